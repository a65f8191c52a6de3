"""Round endpoints: list, create, transitions, statistics, progress, reveal distribution, discussion, rubrics."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Profile, Role
from accounts.permissions import LABELLERS, ROUND_MANAGERS, role_permission
from features import selectors as catalogue

from .. import access, selectors, services
from ..models import Consensus, RaterReliability, Round, RubricVersion
from . import serializers as s
from .base import (
    ServiceErrorsMixin,
    StatisticsPagination,
    StatisticsStateMixin,
    managed_round_or_403,
    round_content_or_403,
    visible_round_or_404,
    watched_round_or_403,
)


class RoundListApi(generics.ListAPIView):
    serializer_class = s.RoundSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.round_list(user=self.request.user).order_by("-created_at")


class RoundDetailApi(generics.RetrieveAPIView):
    serializer_class = s.RoundSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        return selectors.round_list(user=self.request.user)


class RoundCreateApi(ServiceErrorsMixin, APIView):
    """Create a draft round: its latents by rule and every rater's balanced queue."""

    permission_classes = [role_permission(write=ROUND_MANAGERS)]

    @extend_schema(request=s.RoundCreateInputSerializer, responses={201: s.RoundSerializer})
    def post(self, request):
        data = s.RoundCreateInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        values = data.validated_data
        sae = catalogue.sae_list(user=request.user).filter(pk=values["sae"]).first()
        rubric_version = access.rubric_versions_writable(request.user).filter(pk=values["rubric_version"]).first()
        if sae is None or rubric_version is None:
            raise ValidationError({"detail": "unknown SAE or rubric version"})
        raters = None
        if values["raters"] is not None:
            # Raters of the round's institutions only: any other pseudonym is as unknown as a made-up one.
            profiles = Profile.objects.filter(
                pseudonym__in=values["raters"], role__in=LABELLERS, institution__in=values["institutions"]
            ).select_related("user__profile")
            if profiles.count() != len(set(values["raters"])):
                raise ValidationError({"raters": "unknown pseudonyms"})
            raters = [profile.user for profile in profiles]
        round_ = services.round_create(
            name=values["name"],
            kind=values["kind"],
            sae=sae,
            rubric_version=rubric_version,
            institutions=values["institutions"],
            overlap=values["overlap"],
            repeat_fraction=values["repeat_fraction"],
            blind=values["blind"],
            selection_rule=values["selection_rule"],
            n_latents=values["n_latents"],
            latent_indices=values["latent_indices"],
            deadline=values["deadline"],
            raters=raters,
            seed=values["seed"],
            detection_per_side=values["detection_per_side"],
            min_repeats=values["min_repeats"],
            routing=services.routing_config_from_fields(fields=values),
            by=request.user,
        )
        return Response(s.RoundSerializer(round_).data, status=status.HTTP_201_CREATED)


class _RoundTransitionApi(ServiceErrorsMixin, APIView):
    permission_classes = [role_permission(write=ROUND_MANAGERS)]
    service = None

    @extend_schema(request=None, responses={200: s.RoundSerializer})
    def post(self, request, pk: int):
        round_ = managed_round_or_403(request.user, pk)
        type(self).service(round=round_, by=request.user)
        round_.refresh_from_db()
        return Response(s.RoundSerializer(round_).data)


class RoundOpenApi(_RoundTransitionApi):
    """draft → open. 409 from any other state."""

    service = services.round_open


class RoundCloseApi(_RoundTransitionApi):
    """open → closed; labels freeze and the statistics job is queued (`statistics_status`). 409 from any
    other state."""

    service = services.round_close


class RoundRevealApi(_RoundTransitionApi):
    """closed → revealed, calibration rounds only. 409 otherwise."""

    service = services.round_reveal


class RoundStatisticsComputeApi(_RoundTransitionApi):
    """Queue the recomputation of a closed round's statistics (idempotent); watch `statistics_status`."""

    service = services.round_statistics_request


class RoundFollowUpApi(ServiceErrorsMixin, APIView):
    """A new rubric version and a follow-up calibration round (draft) on the same latents and raters."""

    permission_classes = [role_permission(write=ROUND_MANAGERS)]

    @extend_schema(request=s.RoundFollowUpInputSerializer, responses={201: s.RoundSerializer})
    def post(self, request, pk: int):
        parent = managed_round_or_403(request.user, pk)
        data = s.RoundFollowUpInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        concepts = s.ConceptInputSerializer.specs(values["concepts"]) if "concepts" in values else None
        follow_up = services.round_follow_up_create(
            parent=parent,
            guidelines=values["guidelines"],
            concepts=concepts,
            name=values["name"],
            deadline=values["deadline"],
            by=request.user,
        )
        return Response(s.RoundSerializer(follow_up).data, status=status.HTTP_201_CREATED)


class RoundProgressApi(APIView):
    permission_classes = [role_permission()]

    @extend_schema(responses=s.RoundProgressSerializer)
    def get(self, request, pk: int):
        round_ = watched_round_or_403(request.user, pk)
        return Response(s.RoundProgressSerializer(selectors.round_progress(round=round_)).data)


class _RoundStatisticsListApi(StatisticsStateMixin, generics.ListAPIView):
    """A list of one closed round's statistics, with their state (`statistics`, `X-Statistics-Status`):
    while `queued` or `running` the list is empty or holds the previous computation's."""

    permission_classes = [role_permission()]
    pagination_class = StatisticsPagination

    def content_round(self) -> Round:
        round_ = round_content_or_403(self.request.user, self.kwargs["pk"])
        self.statistics = selectors.round_statistics_state(round=round_, user=self.request.user)
        return round_


class AgreementReportListApi(_RoundStatisticsListApi):
    """The round's agreement reports; `statistics` says whether they are final (`done`) or still computing
    (`queued`, `running`: the list is empty or holds the previous computation's), or `failed`."""

    serializer_class = s.AgreementReportSerializer

    def get_queryset(self):
        return self.content_round().agreement_reports.order_by("metric", "level")


class RoundConsensusListApi(_RoundStatisticsListApi):
    """The round's consensus per latent, most uncertain first; `statistics` says whether it is final."""

    serializer_class = s.ConsensusSerializer
    queryset = Consensus.objects.none()

    def get_queryset(self):
        return selectors.round_latents_by_entropy(round=self.content_round())


class RaterReliabilityListApi(_RoundStatisticsListApi):
    """The round's rater reliability; `statistics` says whether it is final."""

    serializer_class = s.RaterReliabilitySerializer
    queryset = RaterReliability.objects.none()

    def get_queryset(self):
        round_ = self.content_round()
        return RaterReliability.objects.of_round(round_.pk).select_related("rater__profile").order_by("pk")


class RoundAlphaTrendApi(StatisticsStateMixin, APIView):
    """Alpha along the calibration chain (parents and follow-ups) through this round; the
    `X-Statistics-Status` header says whether this round's point is final."""

    permission_classes = [role_permission()]

    @extend_schema(responses=s.TrendPointSerializer(many=True))
    def get(self, request, pk: int):
        round_ = watched_round_or_403(request.user, pk)
        self.statistics = selectors.round_statistics_state(round=round_, user=request.user)
        return Response(s.TrendPointSerializer(selectors.round_alpha_trend(round=round_), many=True).data)


class RoundDistributionApi(APIView):
    """Per latent, the anonymised label distribution and rationales: raters see it once revealed."""

    permission_classes = [role_permission()]

    @extend_schema(responses=s.LatentDistributionSerializer(many=True))
    def get(self, request, pk: int):
        round_ = visible_round_or_404(request.user, pk)
        if not access.may_see_distribution(request.user, round_):
            raise PermissionDenied("The distribution is shown once the round is revealed.")
        return Response(s.LatentDistributionSerializer(selectors.round_distribution(round=round_), many=True).data)


class CommentListApi(generics.ListAPIView):
    serializer_class = s.CommentSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        round_ = visible_round_or_404(self.request.user, self.kwargs["pk"])
        if not access.may_see_distribution(self.request.user, round_):
            raise PermissionDenied("The discussion opens when the round is revealed.")
        latent = self.request.query_params.get("latent")
        return selectors.comment_list(
            round=round_, latent_id=int(latent) if latent and latent.isdigit() else None
        ).order_by("created_at", "pk")


class CommentCreateApi(ServiceErrorsMixin, APIView):
    # Any role may try; may_discuss_round decides (the round's raters and coordinators, after reveal).
    permission_classes = [role_permission(write=frozenset(Role.values))]

    @extend_schema(request=s.CommentCreateInputSerializer, responses={201: s.CommentSerializer})
    def post(self, request, pk: int):
        round_ = visible_round_or_404(request.user, pk)
        if not access.may_discuss_round(request.user, round_):
            raise PermissionDenied("Only the round's raters and coordinators discuss it, after reveal.")
        data = s.CommentCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        latent = round_.latents.filter(pk=data.validated_data["latent"]).first()
        if latent is None:
            raise ValidationError({"latent": "not a latent of this round"})
        comment = services.comment_create(
            round=round_, latent=latent, text=data.validated_data["text"], by=request.user
        )
        return Response(s.CommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class RubricVersionListApi(generics.ListAPIView):
    serializer_class = s.RubricVersionSerializer
    permission_classes = [role_permission()]
    queryset = RubricVersion.objects.none()

    def get_queryset(self):
        return (
            access.rubric_versions_readable(self.request.user)
            .select_related("rubric")
            .prefetch_related("concepts")
            .order_by("rubric", "version")
        )


class RubricVersionDetailApi(generics.RetrieveAPIView):
    serializer_class = s.RubricVersionSerializer
    permission_classes = [role_permission()]
    queryset = RubricVersion.objects.none()

    def get_queryset(self):
        return access.rubric_versions_readable(self.request.user).select_related("rubric").prefetch_related("concepts")


class RubricCreateApi(ServiceErrorsMixin, APIView):
    permission_classes = [role_permission(write=ROUND_MANAGERS)]

    @extend_schema(request=s.RubricCreateInputSerializer, responses={201: s.RubricVersionSerializer})
    def post(self, request):
        data = s.RubricCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = services.rubric_create(
            name=values["name"],
            description=values["description"],
            guidelines=values["guidelines"],
            concepts=s.ConceptInputSerializer.specs(values["concepts"]),
            by=request.user,
        )
        return Response(s.RubricVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class RubricVersionCreateApi(ServiceErrorsMixin, APIView):
    """Derive the next version of a rubric from this one."""

    permission_classes = [role_permission(write=ROUND_MANAGERS)]

    @extend_schema(request=s.RubricVersionCreateInputSerializer, responses={201: s.RubricVersionSerializer})
    def post(self, request, pk: int):
        parent = access.rubric_versions_writable(request.user).filter(pk=pk).first()
        if parent is None:
            raise Http404
        data = s.RubricVersionCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        concepts = s.ConceptInputSerializer.specs(values["concepts"]) if "concepts" in values else None
        version = services.rubric_version_create(
            parent=parent, guidelines=values["guidelines"], concepts=concepts, by=request.user
        )
        return Response(s.RubricVersionSerializer(version).data, status=status.HTTP_201_CREATED)
