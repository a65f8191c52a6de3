"""REST endpoints for rounds and the caller's own assignments."""
from __future__ import annotations

from rest_framework import generics, serializers

from accounts.permissions import role_permission

from . import selectors
from .models import Assignment, Round


class RoundSerializer(serializers.ModelSerializer):
    institutions = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta:
        model = Round
        fields = ["id", "name", "kind", "sae", "rubric_version", "institutions", "overlap", "repeat_fraction",
                  "blind", "status", "deadline", "parent", "created_at", "opened_at", "closed_at"]


class AssignmentSerializer(serializers.ModelSerializer):
    """Hidden repeats look like any other item: is_repeat and repeat_of are never shown to raters."""

    has_label = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "round", "latent", "position", "has_label"]

    def get_has_label(self, assignment) -> bool:
        return hasattr(assignment, "label")


class RoundListApi(generics.ListAPIView):
    serializer_class = RoundSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.round_list(user=self.request.user)


class RoundDetailApi(generics.RetrieveAPIView):
    serializer_class = RoundSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.round_list(user=self.request.user)


class AssignmentListApi(generics.ListAPIView):
    serializer_class = AssignmentSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        round_id = self.request.query_params.get("round")
        return selectors.assignment_list(
            user=self.request.user, round_id=int(round_id) if round_id and round_id.isdigit() else None
        ).select_related("label")
