"""REST endpoints: explain a note, drift audits, protected-attribute flags per SAE."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import (
    JOB_RUNNERS,
    LABEL_READERS,
    corpora_visible_to,
    role_permission,
)
from accounts.redaction import without_server_paths
from accounts.throttles import AnonThrottle, UserThrottle
from features.models import Corpus
from inference.services import BrokerUnavailable, ScanInProgress

from . import selectors, services
from .models import SavedNote
from .throttles import ExplainThrottle
from .views import DRIFT_READERS, visible_sae

ANY_ROLE = role_permission(write=frozenset(Role.values))  # clinicians included: explaining is their use


class ExplainInputSerializer(serializers.Serializer):
    sae = serializers.IntegerField()
    # The longest note (settings.CLINICAL_MAX_NOTE_CHARS) is the service's to refuse, in its own words.
    text = serializers.CharField(trim_whitespace=False)
    store = serializers.BooleanField(default=False)
    flow = serializers.BooleanField(
        default=True, help_text="The layer-by-layer flow over the other SAEs of the host model (false: this SAE only)"
    )


class NoteExplainApi(APIView):
    """Explain a note with an SAE: every token's active latents and the concepts represented, with their
    uncertainty. An audit of the model, not a clinical finding; the note is stored only with `store`.
    400 for a note that cannot be explained (empty, too long, the model failed on it); 429 past the
    per-user rate CLINICAL_EXPLAIN_RATE (shared with the page)."""

    permission_classes = [ANY_ROLE]
    throttle_classes = [AnonThrottle, UserThrottle, ExplainThrottle]

    @extend_schema(request=ExplainInputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = ExplainInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sae = visible_sae(request.user, data.validated_data["sae"])
        try:
            explanation = services.note_explain(
                sae=sae,
                text=data.validated_data["text"],
                by=request.user,
                store=data.validated_data["store"],
                flow=data.validated_data["flow"],
                ip=request.META.get("REMOTE_ADDR"),
                via="api",
            )
        except services.NoteRejected as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(explanation.to_json())


class SavedNoteSerializer(serializers.ModelSerializer):
    class Meta:
        model = SavedNote
        fields = ["id", "sae", "text", "sha256", "created_at"]


class SavedNoteListApi(APIView):
    """The notes the caller kept (only theirs), newest first; older than CLINICAL_SAVED_NOTE_DAYS are purged."""

    permission_classes = [ANY_ROLE]

    @extend_schema(responses=SavedNoteSerializer(many=True))
    def get(self, request):
        services.saved_notes_purge()
        return Response(SavedNoteSerializer(selectors.saved_notes(user=request.user), many=True).data)


class SavedNoteDetailApi(APIView):
    """Delete a note the caller kept: 204; anyone else's note is 404."""

    permission_classes = [ANY_ROLE]

    @extend_schema(responses={204: None})
    def delete(self, request, note_id: int):
        note = selectors.saved_notes(user=request.user).filter(pk=note_id).first()
        if note is None:
            raise Http404("No such note.")
        services.saved_note_delete(note=note, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DriftInputSerializer(serializers.Serializer):
    sae = serializers.IntegerField()
    corpus = serializers.IntegerField()
    reference = serializers.IntegerField(required=False, allow_null=True)
    thresholds = serializers.DictField(child=serializers.FloatField(), required=False)


class DriftAuditCreateApi(APIView):
    permission_classes = [role_permission(read=DRIFT_READERS, write=JOB_RUNNERS)]

    @extend_schema(request=DriftInputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        data = DriftInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        sae = visible_sae(request.user, values["sae"])
        corpora = corpora_visible_to(request.user, Corpus.objects.all())
        corpus = corpora.filter(pk=values["corpus"]).first()
        reference = corpora.filter(pk=values["reference"]).first() if values.get("reference") else None
        if corpus is None or (values.get("reference") and reference is None):
            raise Http404("No such corpus.")
        try:
            job = services.drift_audit_start(
                sae=sae, corpus=corpus, reference=reference, thresholds=values.get("thresholds"), by=request.user
            )
        except BrokerUnavailable:
            return Response(
                {"detail": "The job queue is not answering; try again shortly."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        except ValueError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"job": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class DriftAuditDetailApi(APIView):
    permission_classes = [role_permission(read=DRIFT_READERS)]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, job_id: int):
        job = selectors.drift_jobs(user=request.user).filter(pk=job_id).first()
        if job is None:
            raise Http404("No such drift audit.")
        if job.status != "succeeded":
            return Response(
                {
                    "job": job.pk,
                    "status": job.status,
                    "progress": job.progress,
                    "message": without_server_paths(job.message),
                }
            )
        visible_sae(request.user, job.result["sae_id"])
        return Response({"job": job.pk, "status": job.status, **selectors.drift_report(job=job, user=request.user)})


class ProtectedScanInputSerializer(serializers.Serializer):
    threshold = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)


class ProtectedScanApi(APIView):
    """Queue a protected-attribute scan of an SAE (a `protected_scan` job); follow it at /api/v1/jobs/{id}/."""

    permission_classes = [role_permission(write=JOB_RUNNERS)]

    @extend_schema(request=ProtectedScanInputSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, sae_id: int):
        sae = visible_sae(request.user, sae_id)
        data = ProtectedScanInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = services.protected_scan_start(
                sae=sae, threshold=data.validated_data.get("threshold"), by=request.user
            )
        except BrokerUnavailable:
            return Response(
                {"detail": "The job queue is not answering; nothing was queued. Try again shortly."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        except ScanInProgress as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        except ValueError as error:
            return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"job": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED)


class ProtectedLatentsApi(APIView):
    permission_classes = [role_permission(read=LABEL_READERS)]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, sae_id: int):
        sae = visible_sae(request.user, sae_id)
        latents = list(selectors.protected_latents(sae=sae))
        labels = selectors.latent_labels(sae=sae, indices=[latent.index for latent in latents], user=request.user)
        return Response(
            {
                "sae": sae.pk,
                "scan": sae.metrics.get("protected"),
                "latents": [
                    {
                        "latent_id": latent.pk,
                        "index": latent.index,
                        "associations": latent.protected_associations,
                        "label": labels[latent.index].label,
                        "uncertainty": labels[latent.index].uncertainty,
                    }
                    for latent in latents
                ],
            }
        )
