"""The statistics job of a closed round: requested in the web request, computed by a `cpu` worker under a lease.

`round_statistics_request` asks the broker first (QueueUnavailable: nothing changes, the API answers
503), marks the round `queued` under a fresh token and, once the transaction commits, sends
`annotation.compute_round_statistics` to the `cpu` queue; the request answers at once. The worker
(`round_statistics_run`) claims the request with a conditional update (queued → running, or a running
one whose lease expired or whose holder died, same token, compare-and-set on the attempt counter),
holds a lease renewed by a heartbeat (accounts/leases.py) while it computes outside any transaction,
then writes the results and `done` in one short transaction with the round row locked, only if the
lease is still its own. The sweeper (`round_statistics_sweep`, Celery beat) re-sends a computation whose
lease expired, up to JOB_MAX_ATTEMPTS runs, then fails it saying why, and re-sends a queued one whose
message the broker lost. A redelivered message of a finished computation, one superseded by a newer
request or one whose lease another live worker holds is dropped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.audit import audit_record
from accounts.broker import BrokerUnavailable, broker_check, markers_on_broker
from accounts.leases import Heartbeat, LeaseLost, lease_deadline, worker_is_dead_sibling, worker_name

from ..models import Round
from .errors import QueueUnavailable, RoundStateError
from .statistics import LABELLED_ROUND_STATUSES, RoundStatistics, round_statistics_compute

logger = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.5  # seconds between two progress writes
QUEUE = "cpu"
Status = Round.StatisticsStatus
PENDING = (Status.QUEUED, Status.RUNNING)
__all__ = ["round_statistics_request", "round_statistics_run", "round_statistics_sweep"]


def round_statistics_request(*, round: Round, by) -> Round:  # noqa: A002
    """Queue the computation of a closed round's statistics (close and "Recompute" both come here).

    The broker is asked first (one try, ~2 s at most): when it does not answer, QueueUnavailable is raised
    before anything is written (inside a close, the whole close rolls back and the round stays open)."""
    if round.status not in LABELLED_ROUND_STATUSES:
        raise RoundStateError(f"Statistics are computed for closed rounds; '{round.name}' is {round.status}.")
    try:
        broker_check()
    except BrokerUnavailable as error:
        logger.warning("statistics of round %s refused: %s", round.pk, error)
        raise QueueUnavailable() from error
    token = uuid.uuid4().hex
    with transaction.atomic():
        now = timezone.now()
        Round.objects.filter(pk=round.pk).update(
            statistics_status=Status.QUEUED,
            statistics_progress=0.0,
            statistics_token=token,
            statistics_message="queued: waiting for a worker",
            statistics_updated_at=now,
            statistics_sent_at=now,
            statistics_attempts=0,
            statistics_worker="",
            statistics_lease_expires_at=None,
        )
        audit_record(actor=by, action="round.statistics.request", obj=round)
        transaction.on_commit(lambda: _send(round_id=round.pk, token=token))
    round.statistics_status, round.statistics_token = Status.QUEUED, token
    return round


def _marker(token: str) -> str:
    """What every message of one request carries in its task id, so the sweeper can find it on the broker."""
    return f"round-statistics-{token}"


def _send(*, round_id: int, token: str) -> None:
    """Hand the job to a worker; a broker that fails now leaves the round queued for the sweeper to re-send."""
    from celery import current_app

    from ..tasks import compute_round_statistics_task

    if current_app.conf.task_always_eager:
        round_statistics_run(round_id=round_id, token=token)
        return
    try:
        compute_round_statistics_task.apply_async(
            args=[round_id, token], queue=QUEUE, task_id=f"{_marker(token)}-{uuid.uuid4().hex[:8]}", retry=False
        )
    except Exception as error:  # noqa: BLE001 - the round stays queued with sent_at set: the sweeper re-sends it
        logger.warning(
            "statistics of round %s could not be queued (%s); the sweeper will re-send them", round_id, error
        )
        Round.objects.filter(pk=round_id, statistics_token=token, statistics_status=Status.QUEUED).update(
            statistics_message="the job queue did not take the computation; it will be re-sent automatically",
            statistics_updated_at=timezone.now(),
        )


class _Lease:
    """The lease of one claimed computation: its heartbeat, its progress callback and its closing write.

    Every write is conditional on the round still being `running` under this token and this worker."""

    def __init__(self, *, round_id: int, token: str, worker: str) -> None:
        self.round_id, self.token, self.worker = round_id, token, worker
        self._last = 0.0
        self.heartbeat = Heartbeat(name=f"round-{round_id}-statistics-heartbeat", renew=self.renew, on_stall=self._note)

    def mine(self):
        return Round.objects.filter(
            pk=self.round_id,
            statistics_token=self.token,
            statistics_status=Status.RUNNING,
            statistics_worker=self.worker,
        )

    def renew(self) -> bool:
        """False only when the computation is visibly no longer ours (reaped or superseded). A round this
        thread's connection cannot see yet (a caller's open transaction) is not a lost one."""
        if self.mine().update(statistics_lease_expires_at=lease_deadline()):
            return True
        return not Round.objects.filter(pk=self.round_id).exists()

    def _note(self, reason: str) -> None:
        self.mine().update(statistics_message=f"stalled: {reason}"[:300], statistics_updated_at=timezone.now())

    def report(self, fraction: float, message: str) -> None:
        """The progress callback: raises LeaseLost once the computation is no longer ours."""
        self.heartbeat.touch()
        self.heartbeat.check()
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        if not self.mine().update(
            statistics_progress=min(max(fraction, 0.0), 1.0),
            statistics_message=message[:300],
            statistics_updated_at=timezone.now(),
        ):
            raise LeaseLost(f"the statistics of round {self.round_id} are no longer computed by {self.worker}")

    @contextmanager
    def commit(self, summary: RoundStatistics) -> Iterator[None]:
        """Inside the computation's closing transaction: lock the round, check the lease is still ours (else
        LeaseLost and the transaction rolls back: nothing written), then end `done` with the results."""
        self.heartbeat.check()
        if self.mine().select_for_update().first() is None:
            raise LeaseLost(f"the statistics of round {self.round_id} are no longer computed by {self.worker}")
        yield
        alpha = summary.alpha.get("nominal") if summary.alpha else None
        self.mine().update(
            statistics_status=Status.DONE,
            statistics_progress=1.0,
            statistics_lease_expires_at=None,
            statistics_updated_at=timezone.now(),
            statistics_message=f"{summary.n_labels} labels" + (f", α = {alpha:.3f}" if alpha is not None else ""),
        )


def _give_up(rows, *, now, why: str, attempts: int) -> bool:
    """running|queued → failed once JOB_MAX_ATTEMPTS runs were used, conditional on `rows` (the state read)."""
    return bool(
        rows.update(
            statistics_status=Status.FAILED,
            statistics_lease_expires_at=None,
            statistics_updated_at=now,
            statistics_message=f"failed: {why}; gave up after {attempts} attempts "
            f"(JOB_MAX_ATTEMPTS={settings.JOB_MAX_ATTEMPTS})"[:300],
        )
    )


def _claim(*, round_id: int, token: str, worker: str, node: str | None) -> str | None:
    """queued → running under `worker` with a fresh lease, in one conditional update; None when claimed,
    else why not ("dropped", or "failed" once JOB_MAX_ATTEMPTS runs were used)."""
    row = (
        Round.objects.filter(pk=round_id, statistics_token=token, statistics_status__in=PENDING)
        .values("statistics_status", "statistics_worker", "statistics_attempts")
        .first()
    )
    if row is None:
        logger.info("statistics of round %s: request %s is finished or superseded; dropped", round_id, token)
        return "dropped"
    now = timezone.now()
    holder, attempts = row["statistics_worker"], row["statistics_attempts"]
    claimable = Q(statistics_status=Status.QUEUED) | Q(
        Q(statistics_lease_expires_at__lt=now) | Q(statistics_lease_expires_at__isnull=True),
        statistics_status=Status.RUNNING,
    )
    if row["statistics_status"] == Status.RUNNING and worker_is_dead_sibling(holder, node):
        claimable |= Q(statistics_status=Status.RUNNING, statistics_worker=holder)  # a killed pool child
    candidates = Round.objects.filter(claimable, pk=round_id, statistics_token=token, statistics_attempts=attempts)
    if attempts >= settings.JOB_MAX_ATTEMPTS:
        if _give_up(candidates, now=now, why=f"last worker: {holder or 'none'}", attempts=attempts):
            return Status.FAILED
        return "dropped"
    attempt = f" (attempt {attempts + 1})" if attempts else ""
    if candidates.update(
        statistics_status=Status.RUNNING,
        statistics_worker=worker,
        statistics_lease_expires_at=lease_deadline(),
        statistics_attempts=F("statistics_attempts") + 1,
        statistics_progress=0.0,
        statistics_message=f"started{attempt}",
        statistics_updated_at=now,
    ):
        return None
    logger.info("statistics of round %s: held by %s under a live lease; duplicate dropped", round_id, holder)
    return "dropped"


def round_statistics_run(*, round_id: int, token: str, node: str | None = None) -> str:
    """The worker's side: claim, compute under a lease, write once, finish. Returns the final status, or
    why nothing was done ("dropped"; "lost": the lease was lost mid-way and the sweeper re-sends it)."""
    worker = worker_name(node)
    refused = _claim(round_id=round_id, token=token, worker=worker, node=node)
    if refused is not None:
        return refused
    lease = _Lease(round_id=round_id, token=token, worker=worker)
    lease.heartbeat.start()
    try:
        round_ = Round.objects.select_related("sae", "rubric_version").get(pk=round_id)
        round_statistics_compute(round=round_, progress=lease.report, commit=lease.commit)
    except LeaseLost as lost:
        logger.warning("statistics of round %s stopped on %s: %s", round_id, worker, lost)
        return "lost"
    except Exception as error:  # noqa: BLE001 - the round says why; "Recompute statistics" tries again
        logger.exception("statistics of round %s failed", round_id)
        lease.mine().update(
            statistics_status=Status.FAILED,
            statistics_lease_expires_at=None,
            statistics_message=f"failed: {type(error).__name__}: {error}"[:300],
            statistics_updated_at=timezone.now(),
        )
        return Status.FAILED
    finally:
        lease.heartbeat.stop()
    return Status.DONE


def round_statistics_sweep() -> dict[str, int]:
    """The reaper of round statistics, run by Celery beat every JOB_SWEEP_SECONDS (like `inference.sweep_jobs`).

    - A `running` computation whose lease expired (its worker was killed or hangs) goes back to `queued` and
      is re-sent, or fails saying why once it has used JOB_MAX_ATTEMPTS runs.
    - A `queued` one sent more than JOB_QUEUED_GRACE_SECONDS ago whose message the broker no longer holds
      (a Redis restarted without persistence, a send that failed after the commit) is re-sent.
    Every change is conditional on the state read, so two sweepers (or a sweeper and a worker) never both act.
    """
    now = timezone.now()
    counts = {"requeued": 0, "failed": 0, "resent": 0}
    expired = Round.objects.filter(
        Q(statistics_lease_expires_at__lt=now) | Q(statistics_lease_expires_at__isnull=True),
        statistics_status=Status.RUNNING,
    )
    for row in expired.values(
        "pk", "statistics_token", "statistics_worker", "statistics_lease_expires_at", "statistics_attempts"
    ):
        lease_at, attempts = row["statistics_lease_expires_at"], row["statistics_attempts"]
        same = Round.objects.filter(
            pk=row["pk"],
            statistics_status=Status.RUNNING,
            statistics_token=row["statistics_token"],
            statistics_worker=row["statistics_worker"],
            statistics_attempts=attempts,
        )
        same = same.filter(statistics_lease_expires_at=lease_at) if lease_at else same
        when = f"at {lease_at:%H:%M:%S} " if lease_at else ""
        why = f"lease expired {when}on {row['statistics_worker'] or 'an unknown worker'}"
        if attempts >= settings.JOB_MAX_ATTEMPTS:
            if _give_up(same, now=now, why=why, attempts=attempts):
                counts["failed"] += 1
                audit_record(
                    actor=None, action="round.statistics.fail", obj=Round(pk=row["pk"]), payload={"error": why}
                )
        elif same.update(
            statistics_status=Status.QUEUED,
            statistics_lease_expires_at=None,
            statistics_sent_at=now,
            statistics_updated_at=now,
            statistics_message=f"{why}; re-sent (attempt {attempts + 1} of {settings.JOB_MAX_ATTEMPTS})"[:300],
        ):
            counts["requeued"] += 1
            logger.warning("statistics of round %s: %s; re-sent", row["pk"], why)
            _send_now(round_id=row["pk"], token=row["statistics_token"])
    grace = now - timedelta(seconds=settings.JOB_QUEUED_GRACE_SECONDS)
    waiting = list(
        Round.objects.filter(
            Q(statistics_sent_at__lt=grace) | Q(statistics_sent_at__isnull=True, statistics_updated_at__lt=grace),
            statistics_status=Status.QUEUED,
        ).values("pk", "statistics_token", "statistics_sent_at")
    )
    try:
        held = markers_on_broker([_marker(row["statistics_token"]) for row in waiting])
    except Exception:  # noqa: BLE001 - the broker is down: nothing can be re-sent now anyway
        logger.warning("the statistics sweeper could not reach the broker; %d queued computations wait", len(waiting))
        return counts
    for row in waiting:
        if held is not None and _marker(row["statistics_token"]) in held:
            continue  # waiting behind other work, or reserved by a worker: not lost
        if Round.objects.filter(
            pk=row["pk"],
            statistics_status=Status.QUEUED,
            statistics_token=row["statistics_token"],
            statistics_sent_at=row["statistics_sent_at"],
        ).update(
            statistics_sent_at=now,
            statistics_updated_at=now,
            statistics_message="re-sent: its message was lost before a worker took it",
        ):
            counts["resent"] += 1
            _send_now(round_id=row["pk"], token=row["statistics_token"])
    return counts


def _send_now(*, round_id: int, token: str) -> None:
    from ..tasks import compute_round_statistics_task

    try:
        compute_round_statistics_task.apply_async(
            args=[round_id, token], queue=QUEUE, task_id=f"{_marker(token)}-{uuid.uuid4().hex[:8]}", retry=False
        )
    except Exception as error:  # noqa: BLE001 - the next sweep tries again (the round stays queued)
        logger.warning("statistics of round %s could not be re-sent: %s", round_id, error)
