"""Progress reporting and the lease of a running job: what a job body talks to while it works.

A leaf module (it imports only the Job model), so job bodies, the runner and commands all use it
without importing each other. Every write is conditional on the job still being RUNNING under this
worker's name: a cancelled or reaped job notices at its next report and stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat, Right
from django.utils import timezone

from accounts.leases import Heartbeat, lease_deadline, worker_is_dead_sibling, worker_name

from .models import Job

logger = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
LOG_TAIL_CHARS = 8000
__all__ = ["JobCancelled", "JobLost", "JobReporter", "lease_deadline", "worker_is_dead_sibling", "worker_name"]


class JobCancelled(Exception):
    """Raised inside a running job when it is no longer this worker's to run (cancelled or reaped)."""


class JobLost(JobCancelled):
    """Raised inside a running job whose heartbeat gave up: the database refused JOB_HEARTBEAT_MAX_FAILURES
    renewals in a row, or the body reported nothing for JOB_STALL_SECONDS. The body stops before writing
    anything more (no checkpoint, no result); the sweeper re-sends the job once the lease has lapsed."""


def log_append(text: str):
    """An update expression that appends a time-stamped line to a job's log, keeping its tail."""
    line = f"{timezone.now():%H:%M:%S} {text}\n"
    return Right(Concat(F("log_tail"), Value(line)), LOG_TAIL_CHARS)


class JobReporter:
    """The progress callback handed to pure code, and the job's heartbeat.

    Progress is written at most every `interval` seconds. A background thread (accounts.leases.Heartbeat)
    renews the lease every third of JOB_LEASE_SECONDS, retrying a failed renewal with backoff. Once the
    job is no longer ours (cancelled, reaped), the renewals failed JOB_HEARTBEAT_MAX_FAILURES times in a
    row, or no report came for JOB_STALL_SECONDS, the next report (or the commit) raises JobCancelled or
    JobLost and nothing more is written.
    """

    def __init__(
        self,
        job_id: int,
        *,
        worker: str,
        interval: float = 0.5,
        echo: Progress | None = None,
        settle: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self.job_id = job_id
        self.settle = settle or (lambda device: {})
        self.worker = worker
        self.interval = interval
        self.echo = echo
        self.result_written = False
        self._last = 0.0
        self._last_message = ""
        self.heartbeat = Heartbeat(name=f"job-{job_id}-heartbeat", renew=self.renew, on_stall=self._note_stall)

    @property
    def lost(self):
        """Set once the heartbeat gave up or found the job no longer ours (a threading.Event)."""
        return self.heartbeat.lost

    def _mine(self):
        return Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING, worker=self.worker)

    # --- heartbeat ---
    def start_heartbeat(self) -> None:
        self.heartbeat.start()

    def renew(self) -> bool:
        """Extend the lease; False only when the job is visibly no longer ours. A job row this thread's
        connection cannot see (created in a caller's still-open transaction) is not a lost job."""
        now = timezone.now()
        if self._mine().update(lease_expires_at=lease_deadline(), heartbeat_at=now):
            return True
        return not Job.objects.filter(pk=self.job_id).exists()

    def _note_stall(self, reason: str) -> None:
        self._mine().update(log_tail=log_append(f"heartbeat stopped: {reason}"))

    def stop_heartbeat(self) -> None:
        self.heartbeat.stop()

    def _check(self) -> None:
        if self.heartbeat.lost.is_set():
            reason = self.heartbeat.reason
            raise JobLost(f"job {self.job_id} stopped on {self.worker}: {reason}")

    # --- progress ---
    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.echo is not None:
            self.echo(fraction, message)
        self.heartbeat.touch()
        self._check()
        now = time.monotonic()
        if now - self._last < self.interval and fraction < 1.0:
            return
        self._last = now
        fields: dict[str, Any] = {"progress": fraction, "message": message[:1000]}
        if message != self._last_message:  # the log keeps each distinct message once, newest last
            self._last_message = message
            fields["log_tail"] = log_append(f"{fraction * 100:5.1f}% {message[:300]}")
        if not self._mine().update(**fields):
            raise JobCancelled(f"job {self.job_id} is no longer running under {self.worker}")

    def record(self, **fields: Any) -> None:
        """Bookkeeping fields (device, checkpoint URI); ignored once the job is no longer ours."""
        self._mine().update(**fields)

    @contextmanager
    def commit(self, result: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Write a job's outputs and mark it succeeded in one transaction, with the job row locked.

        Inside the block the job is RUNNING under this worker (else JobCancelled, nothing written); a
        cancel that arrives meanwhile waits for the lock, then finds the job finished. The body may add
        to `result` inside the block; it is stored when the block ends.
        """
        self._check()
        with transaction.atomic():
            locked = self._mine().select_for_update().first()
            if locked is None:
                raise JobCancelled(f"job {self.job_id} is no longer running under {self.worker}")
            yield result
            device = self._mine().values_list("device", flat=True).first() or ""
            self._mine().update(
                **self.settle(device),
                status=Job.Status.SUCCEEDED,
                progress=1.0,
                result=result,
                message="done",
                finished_at=timezone.now(),
                lease_expires_at=None,
            )
            self.result_written = True


def close_connections() -> None:
    """Database connections of a long job may have timed out; workers call this around each job."""
    close_old_connections()
