"""REST endpoints for jobs: list and follow them, cancel them, launch corpus imports."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Institution
from accounts.permissions import JOB_RUNNERS, jobs_visible_to, role_permission

from .models import Job
from .services import job_cancel, job_create, upload_store


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = ["id", "kind", "parameters", "queue", "status", "progress", "message", "result", "device",
                  "gpu_seconds", "energy_kwh", "co2_kg", "attempts", "created_at", "started_at", "finished_at"]


class JobListApi(generics.ListAPIView):
    serializer_class = JobSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return jobs_visible_to(self.request.user, Job.objects.all())


class JobDetailApi(generics.RetrieveAPIView):
    serializer_class = JobSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return jobs_visible_to(self.request.user, Job.objects.all())


class JobCancelApi(APIView):
    permission_classes = [role_permission(write=JOB_RUNNERS)]

    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, pk: int):
        job = get_object_or_404(jobs_visible_to(request.user, Job.objects.all()), pk=pk)
        try:
            job = job_cancel(job=job, by=request.user)
        except ValueError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(JobSerializer(job).data)


class ImportCorpusInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    scrub_phi = serializers.BooleanField(required=False, default=False)
    institution = serializers.SlugRelatedField(
        slug_field="code", queryset=Institution.objects.all(), required=False, allow_null=True, default=None
    )

    def validate_file(self, value):
        if not value.name.lower().endswith((".jsonl", ".ndjson", ".json", ".csv")):
            raise serializers.ValidationError("Upload a .jsonl or .csv file.")
        return value


class ImportCorpusApi(APIView):
    """Upload a JSONL/CSV corpus; a job imports it on a CPU worker. Follow it at /api/v1/jobs/{id}/."""

    permission_classes = [role_permission(write=JOB_RUNNERS)]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=ImportCorpusInputSerializer, responses={202: JobSerializer})
    def post(self, request):
        form = ImportCorpusInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        path = upload_store(uploaded=data["file"], prefix="corpus")
        job = job_create(
            kind=Job.Kind.IMPORT_CORPUS, by=request.user,
            parameters={"path": str(path), "name": data["name"], "description": data["description"],
                        "scrub_phi": data["scrub_phi"],
                        "institution": data["institution"].code if data["institution"] else None},
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
