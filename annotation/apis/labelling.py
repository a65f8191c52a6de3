"""A rater's endpoints: their queue, one item's evidence, label submission, detection answers; labels list."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import LABELLERS, role_of, role_permission

from .. import access, selectors, services
from ..models import Assignment
from . import serializers as s
from .base import ServiceErrorsMixin, round_content_or_403


def _own_assignment_or_404(user, pk: int, *, write: bool = False) -> Assignment:
    """Only the caller's own items, never in a draft round: anything else is not found."""
    scope = access.assignments_writable(user) if write else access.assignments_readable(user)
    assignment = scope.filter(pk=pk).select_related("round__rubric_version", "latent__sae").first()
    if assignment is None:
        raise Http404
    return assignment


class AssignmentListApi(generics.ListAPIView):
    """The caller's own queue, in order."""

    serializer_class = s.AssignmentSerializer
    permission_classes = [role_permission()]

    def get_queryset(self):
        round_id = self.request.query_params.get("round")
        return (
            selectors.assignment_list(
                user=self.request.user,
                round_id=int(round_id) if round_id and round_id.isdigit() else None,
            )
            .select_related("label")
            .order_by("round", "position")
        )


class AssignmentDetailApi(APIView):
    """One item: the latent's evidence (examples shuffled per item), the rubric, the caller's own label."""

    permission_classes = [role_permission(read=LABELLERS)]

    @extend_schema(responses=s.AssignmentDetailSerializer)
    def get(self, request, pk: int):
        assignment = _own_assignment_or_404(request.user, pk)
        label = selectors.rater_label(assignment=assignment)
        payload = {
            "id": assignment.pk,
            "round": assignment.round_id,
            "round_status": assignment.round.status,
            "position": assignment.position,
            "evidence": selectors.latent_evidence(
                latent=assignment.latent, user=request.user, shuffle_seed=assignment.pk
            ),
            "concepts": selectors.rubric_concepts(round=assignment.round),
            "guidelines": assignment.round.rubric_version.guidelines,
            "label": label,
        }
        return Response(s.AssignmentDetailSerializer(payload).data)


class LabelSubmitApi(ServiceErrorsMixin, APIView):
    """Label one of your items (or revise it while the round is open). 201 for a new label, 200 for an
    edit or a replay of an idempotency key already seen; 409 once the round is closed."""

    permission_classes = [role_permission(write=LABELLERS)]

    @extend_schema(
        request=s.LabelSubmitInputSerializer,
        responses={200: s.LabelSubmitResultSerializer, 201: s.LabelSubmitResultSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
    )
    def post(self, request, pk: int):
        assignment = _own_assignment_or_404(request.user, pk, write=True)
        data = s.LabelSubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        submission = services.label_submit(
            assignment=assignment,
            concept_code=values["concept_code"],
            free_text=values["free_text"],
            confidence=values["confidence"],
            rationale=values["rationale"],
            time_spent_seconds=values["time_spent_seconds"],
            idempotency_key=values["idempotency_key"] or request.headers.get("Idempotency-Key", ""),
            by=request.user,
        )
        result = s.LabelSubmitResultSerializer(
            {"label": submission.label, "created": submission.created, "replayed": submission.replayed}
        )
        return Response(result.data, status=status.HTTP_201_CREATED if submission.created else status.HTTP_200_OK)


class DetectionItemListApi(generics.ListAPIView):
    """The snippets of one detection item, shuffled, with the caller's answers so far."""

    serializer_class = s.DetectionItemSerializer
    permission_classes = [role_permission(read=LABELLERS)]
    pagination_class = None

    def get_queryset(self):
        assignment = _own_assignment_or_404(self.request.user, self.kwargs["pk"])
        return selectors.detection_items(assignment=assignment, user=self.request.user)


class DetectionResponseSubmitApi(ServiceErrorsMixin, APIView):
    """Answer every snippet of one detection item: does it match the label under test?"""

    permission_classes = [role_permission(write=LABELLERS)]

    @extend_schema(request=s.DetectionAnswersInputSerializer, responses=s.CountSerializer)
    def post(self, request, pk: int):
        assignment = _own_assignment_or_404(request.user, pk, write=True)
        data = s.DetectionAnswersInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answers = {answer["item"]: answer["says_match"] for answer in data.validated_data["answers"]}
        n = services.detection_response_submit(assignment=assignment, answers=answers, by=request.user)
        return Response({"n": n})


class LabelListApi(generics.ListAPIView):
    """Raters: their own labels. With ?round=ID, the round's watchers (coordinators, researchers) read all
    its labels once it is closed (403 before: blind), raters by pseudonym; a rater asking for a round still
    gets only their own."""

    serializer_class = s.LabelSerializer
    permission_classes = [role_permission()]

    @extend_schema(parameters=[OpenApiParameter("round", int, required=False)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        labels = (
            access.labels_readable(self.request.user)
            .select_related("concept", "assignment__rater__profile")
            .order_by("pk")
        )
        round_id = self.request.query_params.get("round", "")
        if role_of(self.request.user) in LABELLERS:
            labels = labels.filter(assignment__rater=self.request.user)
            return labels.filter(assignment__round_id=int(round_id)) if round_id.isdigit() else labels
        if not round_id.isdigit():
            return labels.none()
        return labels.filter(assignment__round=round_content_or_403(self.request.user, int(round_id)))
