"""What every annotation endpoint shares: service refusals mapped to HTTP, look-ups through the permission module."""

from __future__ import annotations

from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination

from .. import access, selectors
from ..models import Round
from ..selectors.statistics import StatisticsState
from ..services import InvalidInput, QueueUnavailable, RoundStateError


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The round's state does not allow this."
    default_code = "round_state"


class QueueDown(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The job queue is not reachable right now, so nothing was changed."
    default_code = "queue_unavailable"


class ServiceErrorsMixin:
    """RoundStateError → 409 with its message; InvalidInput → 400; QueueUnavailable → 503."""

    def handle_exception(self, exc):
        if isinstance(exc, RoundStateError):
            exc = Conflict(str(exc))
        elif isinstance(exc, QueueUnavailable):
            exc = QueueDown(str(exc))
        elif isinstance(exc, InvalidInput):
            exc = ValidationError({"detail": str(exc)})
        return super().handle_exception(exc)


def visible_round_or_404(user, pk: int) -> Round:
    round_ = selectors.round_list(user=user).filter(pk=pk).first()
    if round_ is None:
        raise Http404
    return round_


def managed_round_or_403(user, pk: int) -> Round:
    round_ = visible_round_or_404(user, pk)
    if not access.may_manage_round(user, round_):
        raise PermissionDenied("Only the round's coordinators may change it.")
    return round_


def watched_round_or_403(user, pk: int) -> Round:
    round_ = visible_round_or_404(user, pk)
    if not access.may_watch_round(user, round_):
        raise PermissionDenied("Only the round's coordinators and researchers see its statistics and labels.")
    return round_


def round_content_or_403(user, pk: int) -> Round:
    """A round whose labels and statistics the user may read: watched, and closed (blind until then)."""
    round_ = watched_round_or_403(user, pk)
    if not access.round_content_readable(user, round_):
        raise PermissionDenied("Labels and statistics are shown once the round is closed.")
    return round_


class StatisticsStateMixin:
    """An answer that shows statistics or consensus says whether they are ready (docs/round-statistics.md):
    the `X-Statistics-Status` header (`none`, `queued`, `running`, `done`, `failed`) with
    `X-Statistics-Progress`, `X-Statistics-Message: still computing` or `failed` when they are not done, and
    a `statistics` field (StatisticsStateSerializer) when the body is an object (pages of a list included).
    The view sets `self.statistics` from annotation.selectors.statistics while it answers."""

    statistics: StatisticsState | None = None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        state = self.statistics
        if state is not None and response.status_code < 400:
            response["X-Statistics-Status"] = state.status
            response["X-Statistics-Progress"] = f"{state.progress:.3f}"
            if state.incomplete:
                response["X-Statistics-Message"] = "still computing" if state.pending else "failed"
            if isinstance(response.data, dict):
                response.data["statistics"] = state.as_json()
        return response


class StatisticsPagination(PageNumberPagination):
    """Page-number pages whose schema names the `statistics` field StatisticsStateMixin adds."""

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["statistics"] = {
            "type": "object",
            "description": "Whether the listed statistics are final: status none|queued|running|done|failed, "
            "pending, progress, message, updated_at, rounds (those not done). docs/round-statistics.md",
        }
        return paginated


class FileFormatNegotiation(DefaultContentNegotiation):
    """Exports read `?format=` as the file format (csv, jsonl, parquet), not as DRF's renderer override."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type
