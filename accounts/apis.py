"""REST endpoints for institutions and the caller's own profile."""

from __future__ import annotations

from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Institution
from .permissions import institutions_visible_to, role_permission


class InstitutionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Institution
        fields = ["id", "name", "code"]


class InstitutionListApi(generics.ListAPIView):
    serializer_class = InstitutionSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return institutions_visible_to(self.request.user, Institution.objects.all())


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    institution = InstitutionSerializer(allow_null=True)
    pseudonym = serializers.CharField(allow_null=True)


class MeApi(APIView):
    """Who the caller is: username, role, institution and pseudonym."""

    serializer_class = MeSerializer

    def get(self, request):
        profile = getattr(request.user, "profile", None)
        data = {
            "username": request.user.get_username(),
            "role": profile.role if profile else ("admin" if request.user.is_superuser else None),
            "institution": profile.institution if profile else None,
            "pseudonym": profile.pseudonym if profile else None,
        }
        return Response(MeSerializer(data).data)
