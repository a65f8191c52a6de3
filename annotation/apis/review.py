"""Endpoints after labelling: the adjudication queue and decisions, the latent browser, exports."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import ADJUDICATORS, EXPORTERS, LABEL_READERS, role_permission
from features.access import institutions_readable, latents_readable, saes_readable
from features.models import Latent

from .. import access, exports, selectors, services
from ..models import Concept
from ..selectors.browser import SORTS, sae_consensus_field
from . import serializers as s
from .base import (
    Conflict,
    FileFormatNegotiation,
    ServiceErrorsMixin,
    StatisticsPagination,
    StatisticsStateMixin,
)


class AdjudicationQueueApi(StatisticsStateMixin, generics.ListAPIView):
    """Persistently ambiguous latents of the SAEs you may see, most uncertain first. Routing follows the
    SAE-wide consensus: `statistics` says whether a round on those SAEs is still computing (the queue may
    change when it ends)."""

    serializer_class = s.LatentBrowseSerializer
    permission_classes = [role_permission(read=ADJUDICATORS)]
    pagination_class = StatisticsPagination
    queryset = Latent.objects.none()

    def get_queryset(self):
        user = self.request.user
        self.statistics = selectors.sae_statistics_state(sae_ids=saes_readable(user), user=user)
        return selectors.adjudication_queue(user=self.request.user).annotate(
            consensus_agreement=sae_consensus_field("agreement"),
            detection_accuracy=sae_consensus_field("detection_accuracy"),
        )


class AdjudicationListApi(generics.ListAPIView):
    serializer_class = s.AdjudicationSerializer
    permission_classes = [role_permission(read=ADJUDICATORS | LABEL_READERS)]

    def get_queryset(self):
        return (
            access.adjudications_readable(self.request.user)
            .select_related("concept", "senior__profile", "overrode")
            .order_by("-decided_at")
        )


class AdjudicationCreateApi(ServiceErrorsMixin, APIView):
    """Decide an ambiguous latent; the decision sits beside the distribution, which stays. 409 if the
    latent is not (or no longer) ambiguous."""

    permission_classes = [role_permission(write=ADJUDICATORS)]

    @extend_schema(request=s.AdjudicationCreateInputSerializer, responses={201: s.AdjudicationSerializer})
    def post(self, request):
        data = s.AdjudicationCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        # A latent on an SAE the caller may not see is not found; a visible one outside their queue (not
        # ambiguous, or one they still label in an open round) is refused like a decided one: 409.
        latent = latents_readable(request.user).filter(pk=values["latent"]).first()
        if latent is None:
            raise Http404
        if not access.may_adjudicate_latent(request.user, latent):
            raise Conflict(f"Latent {latent.index} is not in your adjudication queue.")
        concept = next(
            (c for c in selectors.adjudication_concepts(latent=latent) if c.code == values["concept_code"]), None
        )
        if concept is None:
            concept = (
                Concept.objects.filter(code=values["concept_code"], rubric_version__rounds__sae_id=latent.sae_id)
                .order_by("-pk")
                .first()
            )
        if concept is None:
            raise ValidationError({"concept_code": "not a concept of a rubric used on this SAE"})
        adjudication = services.adjudication_record(
            latent=latent, concept=concept, rationale=values["rationale"], by=request.user
        )
        return Response(s.AdjudicationSerializer(adjudication).data, status=status.HTTP_201_CREATED)


class LatentBrowseApi(StatisticsStateMixin, generics.ListAPIView):
    """Search labelled latents by concept code or name, free-text name or index; sort by density,
    agreement, entropy or detection accuracy (prefix '-' for ascending). `statistics` says whether the
    SAE-wide consensus behind them is final (the `sae` asked for, else every SAE you may see)."""

    serializer_class = s.LatentBrowseSerializer
    permission_classes = [role_permission(read=LABEL_READERS)]
    pagination_class = StatisticsPagination
    queryset = Latent.objects.none()

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=False),
            OpenApiParameter("sae", int, required=False),
            OpenApiParameter("status", str, required=False),
            OpenApiParameter("sort", str, required=False, enum=list(SORTS)),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        sae = params.get("sae", "")
        saes = saes_readable(self.request.user)
        if sae.isdigit():
            saes = saes.filter(pk=int(sae))
        self.statistics = selectors.sae_statistics_state(sae_ids=saes.values("pk"), user=self.request.user)
        return selectors.latent_browse(
            user=self.request.user,
            q=params.get("q", ""),
            sort=params.get("sort", "index"),
            sae_id=int(sae) if sae.isdigit() else None,
            status=params.get("status", ""),
        )


class LatentLabelHistoryApi(StatisticsStateMixin, APIView):
    """Every label of one latent across rounds, its consensus in every scope and its adjudications;
    `statistics` says whether that consensus is final (every closed round on the latent's SAE)."""

    permission_classes = [role_permission(read=LABEL_READERS)]

    @extend_schema(responses=s.LatentLabelsSerializer)
    def get(self, request, pk: int):
        latent = latents_readable(request.user).filter(pk=pk).first()
        if latent is None or not access.may_read_latent_labels(request.user, latent):
            raise Http404
        distribution = selectors.latent_label_distribution(latent=latent)
        self.statistics = selectors.sae_statistics_state(sae_ids=[latent.sae_id], user=request.user)
        return Response(
            s.LatentLabelsSerializer(
                {
                    "latent": latent.pk,
                    "consensus": distribution["consensus"],
                    "scopes": distribution["scopes"],
                    "adjudications": distribution["adjudications"],
                    "labels": selectors.latent_history(latent=latent, user=request.user),
                    "statistics": self.statistics.as_json(),
                }
            ).data
        )


_EXPORT_PARAMETERS = [
    OpenApiParameter(
        "format",
        str,
        enum=list(exports.FORMATS),
        required=True,
        description="File format (not DRF's renderer override)",
    ),
    OpenApiParameter("round", int, required=False),
    OpenApiParameter("sae", int, required=False),
    OpenApiParameter("institution", str, required=False, description="Institution code of the raters"),
    OpenApiParameter(
        "include_simulated",
        bool,
        required=False,
        description="1 or true: also rounds labelled by simulated raters (the demo's); left out by default",
    ),
]
_EXPORT_RESPONSES = {
    (200, media_type): OpenApiResponse(OpenApiTypes.BINARY)
    for media_type in ("text/csv", "application/x-ndjson", "application/vnd.apache.parquet")
}
_LATENT_EXPORT_RESPONSES = {
    **_EXPORT_RESPONSES,
    (409, "application/json"): OpenApiResponse(
        s.StatisticsConflictSerializer,
        description="The statistics of a round in scope are still computing or failed: `detail` says which; "
        "export the latents when they are done (the labels export meanwhile).",
    ),
}


class StatisticsConflict(APIException):
    """409: the per-latent file would carry missing or stale consensus (docs/round-statistics.md)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "statistics_incomplete"

    def __init__(self, state: selectors.StatisticsState):
        super().__init__(state.notice())
        self.state = state


class _ExportApi(APIView):
    permission_classes = [role_permission(read=EXPORTERS)]
    content_negotiation_class = FileFormatNegotiation
    kind = ""

    @extend_schema(parameters=_EXPORT_PARAMETERS, responses=_EXPORT_RESPONSES)
    def get(self, request):
        params = request.query_params
        fmt = params.get("format", "")
        if fmt not in exports.FORMATS:
            raise ValidationError({"format": f"choose one of {', '.join(exports.FORMATS)}"})
        ids = {}
        for name in ("round", "sae"):
            value = params.get(name, "")
            if value and not value.isdigit():
                raise ValidationError({name: "an id"})
            ids[name] = int(value) if value else None
        # A round or SAE the caller may not read is as unknown as one that was never created.
        if ids["round"] is not None and not access.rounds_watchable(request.user).filter(pk=ids["round"]).exists():
            raise ValidationError({"round": "unknown round"})
        if ids["sae"] is not None and not saes_readable(request.user).filter(pk=ids["sae"]).exists():
            raise ValidationError({"sae": "unknown SAE"})
        institution = None
        if params.get("institution"):
            institution = institutions_readable(request.user).filter(code=params["institution"]).first()
            if institution is None:
                raise ValidationError({"institution": "unknown institution code"})
        scope = exports.ExportScope(
            round_id=ids["round"],
            sae_id=ids["sae"],
            institution=institution,
            include_simulated=params.get("include_simulated", "") in ("1", "true"),
        )
        if scope.empty:
            raise ValidationError({"detail": "choose a scope: round, sae or institution"})
        self.check_statistics(scope)
        return exports.export_response(user=request.user, scope=scope, kind=self.kind, fmt=fmt)

    def check_statistics(self, scope: exports.ExportScope) -> None:
        """Labels are frozen at close: the label file never waits for the statistics."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, StatisticsConflict):
            response.data = {"detail": str(exc.detail), "statistics": exc.state.as_json()}
        return response


class LabelExportApi(_ExportApi):
    """Every label of closed rounds in scope, long format, pseudonymised, streamed."""

    kind = "labels"


class LatentExportApi(_ExportApi):
    """One row per latent in scope: soft label, consensus, entropy, label count, status, adjudication.
    409 while the statistics of a round in scope (the round, or every closed round on the SAEs exported)
    are still computing or failed: the file would carry missing or stale consensus."""

    kind = "latents"

    @extend_schema(parameters=_EXPORT_PARAMETERS, responses=_LATENT_EXPORT_RESPONSES)
    def get(self, request):
        return super().get(request)

    def check_statistics(self, scope: exports.ExportScope) -> None:
        state = exports.latent_export_statistics(user=self.request.user, scope=scope)
        if state.incomplete:
            raise StatisticsConflict(state)
