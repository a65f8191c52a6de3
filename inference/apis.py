"""REST endpoints for jobs: list and follow them, cancel them, launch corpus imports."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import JOB_RUNNERS, UserScopedPrimaryKeyField, UserScopedSlugField, role_permission
from accounts.redaction import without_server_paths
from features import access as catalogue_access

from . import selectors
from .access import jobs_readable, jobs_writable, sweeps_readable
from .models import Job, Sweep
from .services import (
    ARCHITECTURES,
    BrokerUnavailable,
    cache_activations_request,
    job_cancel,
    job_create,
    mine_latents_request,
    sweep_launch,
    train_sae_request,
    upload_discard,
    upload_store,
)

BROKER_DOWN = (
    "The job queue is not reachable right now, so nothing was started. "
    "Try again in a minute; if it persists, tell the administrator."
)


def broker_down_response() -> Response:
    return Response({"detail": BROKER_DOWN}, status=status.HTTP_503_SERVICE_UNAVAILABLE)


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id",
            "uuid",
            "kind",
            "parameters",
            "queue",
            "status",
            "progress",
            "message",
            "result",
            "device",
            "gpu_seconds",
            "device_seconds",
            "energy_kwh",
            "energy_method",
            "co2_kg",
            "cost",
            "attempts",
            "worker",
            "lease_expires_at",
            "sweep",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for field in ("parameters", "result", "message"):
            data[field] = without_server_paths(data[field])
        return data


class JobListApi(generics.ListAPIView):
    serializer_class = JobSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return jobs_readable(self.request.user)


class JobDetailApi(generics.RetrieveAPIView):
    serializer_class = JobSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return jobs_readable(self.request.user)


class JobCancelApi(APIView):
    permission_classes = [role_permission(write=JOB_RUNNERS)]

    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, pk: int):
        job = get_object_or_404(jobs_writable(request.user), pk=pk)
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
    # Only the importer's own institution (admins any): a corpus never lands in another one's private list.
    institution = UserScopedSlugField(
        scope=catalogue_access.institutions_writable,
        slug_field="code",
        required=False,
        allow_null=True,
        default=None,
    )

    def validate_file(self, value):
        if not value.name.lower().endswith((".jsonl", ".ndjson", ".json", ".csv")):
            raise serializers.ValidationError("Upload a .jsonl or .csv file.")
        if value.size > settings.MAX_UPLOAD_BYTES:
            raise serializers.ValidationError(
                f"The file is {value.size} bytes; the limit is {settings.MAX_UPLOAD_BYTES} bytes."
            )
        return value


class ImportCorpusApi(APIView):
    """Upload a JSONL/CSV corpus; a job imports it on a CPU worker. Follow it at /api/v1/jobs/{id}/."""

    permission_classes = [role_permission(write=JOB_RUNNERS)]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=ImportCorpusInputSerializer, responses={202: JobSerializer})
    def post(self, request):
        form = ImportCorpusInputSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        path = upload_store(uploaded=data["file"], prefix="corpus")
        try:
            job = job_create(
                kind=Job.Kind.IMPORT_CORPUS,
                by=request.user,
                parameters={
                    "path": str(path),
                    "name": data["name"],
                    "description": data["description"],
                    "scrub_phi": data["scrub_phi"],
                    "institution": data["institution"].code if data["institution"] else None,
                },
            )
        except BrokerUnavailable:
            upload_discard(path=path)
            return broker_down_response()
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _launch(request, form_class, request_service):
    """Validate the form, call the request service, answer 202 with the job (400 on a refused request)."""
    form = form_class(data=request.data, context={"request": request})
    form.is_valid(raise_exception=True)
    try:
        job = request_service(by=request.user, **form.validated_data)
    except BrokerUnavailable:
        return broker_down_response()
    except ValueError as error:
        return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class CacheActivationsInputSerializer(serializers.Serializer):
    host_model = UserScopedPrimaryKeyField(scope=catalogue_access.host_models_writable)
    hook_name = serializers.CharField(max_length=100)
    corpus = UserScopedPrimaryKeyField(scope=catalogue_access.corpora_writable)
    batch_size = serializers.IntegerField(min_value=1, default=32)
    max_length = serializers.IntegerField(min_value=2, default=128)
    dtype = serializers.ChoiceField(choices=["float16", "float32"], default="float16")


class CacheActivationsApi(APIView):
    """Capture a hook point's activations over a corpus on a GPU worker."""

    permission_classes = [role_permission(write=JOB_RUNNERS)]

    @extend_schema(request=CacheActivationsInputSerializer, responses={202: JobSerializer})
    def post(self, request):
        return _launch(request, CacheActivationsInputSerializer, cache_activations_request)


class TrainSAEInputSerializer(serializers.Serializer):
    activation_set = UserScopedPrimaryKeyField(scope=catalogue_access.activation_sets_writable)
    arch = serializers.ChoiceField(choices=ARCHITECTURES)
    width = serializers.IntegerField(min_value=1)
    k = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    l1 = serializers.FloatField(min_value=0, required=False, allow_null=True, default=None)
    steps = serializers.IntegerField(min_value=1, default=2000)
    batch_size = serializers.IntegerField(min_value=1, default=4096)
    lr = serializers.FloatField(min_value=1e-8, default=2e-4)
    seed = serializers.IntegerField(default=0)
    checkpoint_every = serializers.IntegerField(min_value=1, default=500)
    name = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)
    sweep_group = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class TrainSAEApi(APIView):
    """Train an SAE on an activation set on a GPU worker; the job reports progress and resumes."""

    permission_classes = [role_permission(write=JOB_RUNNERS)]

    @extend_schema(request=TrainSAEInputSerializer, responses={202: JobSerializer})
    def post(self, request):
        return _launch(request, TrainSAEInputSerializer, train_sae_request)


class MineLatentsInputSerializer(serializers.Serializer):
    sae = UserScopedPrimaryKeyField(scope=catalogue_access.saes_writable)
    n_top = serializers.IntegerField(min_value=1, default=20)


class MineLatentsApi(APIView):
    """Mine every latent of an SAE: top and quantile examples, histogram, density, monosemanticity."""

    permission_classes = [role_permission(write=JOB_RUNNERS)]

    @extend_schema(request=MineLatentsInputSerializer, responses={202: JobSerializer})
    def post(self, request):
        return _launch(request, MineLatentsInputSerializer, mine_latents_request)


class SweepInputSerializer(TrainSAEInputSerializer):
    """The training form with a grid instead of one point: the activation set is checked exactly as there."""

    width = None
    k = None
    l1 = None
    sweep_group = None
    widths = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=16)
    ks = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=16)
    l1s = serializers.ListField(child=serializers.FloatField(min_value=0), required=False, default=list, max_length=16)
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    n_top = serializers.IntegerField(min_value=1, default=20)


class SweepSerializer(serializers.ModelSerializer):
    jobs = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Sweep
        fields = ["id", "uuid", "name", "activation_set", "parameters", "created_at", "jobs"]


class SweepLaunchApi(APIView):
    """Train one SAE per point of a grid of widths × k (or L1) on the GPU workers, and mine each."""

    permission_classes = [role_permission(write=JOB_RUNNERS)]

    @extend_schema(request=SweepInputSerializer, responses={202: SweepSerializer})
    def post(self, request):
        form = SweepInputSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        try:
            sweep = sweep_launch(by=request.user, **form.validated_data)
        except BrokerUnavailable:
            return broker_down_response()
        except ValueError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SweepSerializer(sweep).data, status=status.HTTP_202_ACCEPTED)


class FootprintSerializer(serializers.Serializer):
    """What a group of jobs cost: device time, energy and how it was obtained, CO₂, money."""

    n_jobs = serializers.IntegerField()
    device_seconds = serializers.FloatField()
    energy_kwh = serializers.FloatField()
    energy_method = serializers.CharField(source="method", help_text="nvml | rapl | estimated (the weakest part)")
    energy_method_label = serializers.CharField(
        source="method_label", help_text="measured (NVML) | measured (RAPL) | estimated"
    )
    co2_kg = serializers.FloatField()
    cost = serializers.FloatField()


class ComputeSerializer(serializers.Serializer):
    total = FootprintSerializer()
    capture = FootprintSerializer(source="parts.capture")
    training = FootprintSerializer(source="parts.training")
    mining = FootprintSerializer(source="parts.mining")


class SweepDetailSerializer(SweepSerializer):
    compute = serializers.SerializerMethodField()

    class Meta(SweepSerializer.Meta):
        fields = [*SweepSerializer.Meta.fields, "compute"]

    @extend_schema_field(ComputeSerializer)
    def get_compute(self, sweep: Sweep) -> dict:
        return ComputeSerializer(selectors.sweep_footprint(sweep=sweep)).data


class SweepDetailApi(generics.RetrieveAPIView):
    """A sweep with its compute: total (the capture counted once, every training and mining job) and parts."""

    serializer_class = SweepDetailSerializer
    permission_classes = [role_permission(read=JOB_RUNNERS)]

    def get_queryset(self):
        return sweeps_readable(self.request.user).select_related("activation_set").prefetch_related("jobs")


class SAEComputeApi(APIView):
    """An SAE's compute: capture + training + mining jobs, in total and per part."""

    permission_classes = [role_permission(read=JOB_RUNNERS)]

    @extend_schema(responses=ComputeSerializer)
    def get(self, request, sae_id: int):
        sae = get_object_or_404(
            catalogue_access.saes_readable(request.user).select_related("activation_set"), pk=sae_id
        )
        return Response({"sae": sae.pk, **ComputeSerializer(selectors.sae_footprint(sae=sae)).data})
