"""The statistics job of a closed round: requested in the web request, computed by a `cpu` worker.

`round_statistics_request` marks the round `queued` under a fresh token and, once the transaction commits,
sends `annotation.compute_round_statistics` to the `cpu` queue; the request answers at once. The worker
(`round_statistics_run`) claims the request with a conditional update (queued|running → running, same
token), computes outside any transaction while it reports progress at most every PROGRESS_INTERVAL
seconds, writes the results in one short transaction and ends `done` (or `failed` with the error). A
redelivered message of a finished computation, or one superseded by a newer request, is dropped.
"""

from __future__ import annotations

import logging
import time
import uuid

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record

from ..models import Round
from .errors import RoundStateError
from .statistics import LABELLED_ROUND_STATUSES, round_statistics_compute

logger = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.5  # seconds between two progress writes
QUEUE = "cpu"
Status = Round.StatisticsStatus


def round_statistics_request(*, round: Round, by) -> Round:  # noqa: A002
    """Queue the computation of a closed round's statistics (close and "Recompute" both come here)."""
    if round.status not in LABELLED_ROUND_STATUSES:
        raise RoundStateError(f"Statistics are computed for closed rounds; '{round.name}' is {round.status}.")
    token = uuid.uuid4().hex
    with transaction.atomic():
        Round.objects.filter(pk=round.pk).update(
            statistics_status=Status.QUEUED,
            statistics_progress=0.0,
            statistics_token=token,
            statistics_message="queued: waiting for a worker",
            statistics_updated_at=timezone.now(),
        )
        audit_record(actor=by, action="round.statistics.request", obj=round)
        transaction.on_commit(lambda: _send(round_id=round.pk, token=token))
    round.statistics_status, round.statistics_token = Status.QUEUED, token
    return round


def _send(*, round_id: int, token: str) -> None:
    """Hand the job to a worker; a broker that refuses it leaves the round queued with a message saying so."""
    from celery import current_app

    from ..tasks import compute_round_statistics_task

    if current_app.conf.task_always_eager:
        round_statistics_run(round_id=round_id, token=token)
        return
    try:
        compute_round_statistics_task.apply_async(args=[round_id, token], queue=QUEUE, retry=False)
    except Exception as error:  # noqa: BLE001 - the round stays queued; "Recompute statistics" sends it again
        logger.warning("statistics of round %s could not be queued (%s)", round_id, error)
        Round.objects.filter(pk=round_id, statistics_token=token, statistics_status=Status.QUEUED).update(
            statistics_message="the job queue did not take the computation; press Recompute statistics to "
            "send it again",
            statistics_updated_at=timezone.now(),
        )


def _reporter(*, round_id: int, token: str):
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_INTERVAL:
            return
        last[0] = now
        Round.objects.filter(pk=round_id, statistics_token=token, statistics_status=Status.RUNNING).update(
            statistics_progress=min(max(fraction, 0.0), 1.0),
            statistics_message=message[:300],
            statistics_updated_at=timezone.now(),
        )

    return report


def round_statistics_run(*, round_id: int, token: str) -> str:
    """The worker's side: claim, compute, write once, finish. Returns the final status (or why it was dropped)."""
    claimed = Round.objects.filter(
        pk=round_id,
        statistics_token=token,
        statistics_status__in=[Status.QUEUED, Status.RUNNING],
    ).update(
        statistics_status=Status.RUNNING,
        statistics_progress=0.0,
        statistics_message="started",
        statistics_updated_at=timezone.now(),
    )
    if not claimed:
        logger.info("statistics of round %s: request %s is finished or superseded; dropped", round_id, token)
        return "dropped"
    round_ = Round.objects.select_related("sae", "rubric_version").get(pk=round_id)
    try:
        summary = round_statistics_compute(round=round_, progress=_reporter(round_id=round_id, token=token))
    except Exception as error:  # noqa: BLE001 - the round says why; "Recompute statistics" tries again
        logger.exception("statistics of round %s failed", round_id)
        Round.objects.filter(pk=round_id, statistics_token=token).update(
            statistics_status=Status.FAILED,
            statistics_message=f"failed: {type(error).__name__}: {error}"[:300],
            statistics_updated_at=timezone.now(),
        )
        return Status.FAILED
    alpha = summary.alpha.get("nominal") if summary.alpha else None
    Round.objects.filter(pk=round_id, statistics_token=token).update(
        statistics_status=Status.DONE,
        statistics_progress=1.0,
        statistics_updated_at=timezone.now(),
        statistics_message=f"{summary.n_labels} labels" + (f", α = {alpha:.3f}" if alpha is not None else ""),
    )
    return Status.DONE
