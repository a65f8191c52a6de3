"""Leases of background work, and the heartbeat that renews them: shared by every app that runs jobs.

A worker that runs something long (an `inference` job, a round's statistics) holds a lease on its row
until a deadline; a thread in the worker process renews it every third of JOB_LEASE_SECONDS. The app's
sweeper re-sends work whose lease expired. The lease is renewed only while the worker can prove the work
is still its own and is still moving:

- a failing renewal (the database unreachable, the connection killed) is retried with backoff; after
  JOB_HEARTBEAT_MAX_FAILURES failures in a row, spread over about one renewal period so that they end
  before the lease does, the heartbeat gives up and the body stops at its next check;
- a body that reported no progress for JOB_STALL_SECONDS is taken as hung: renewing stops, the lease
  lapses and the sweeper re-sends the work.

The app says what "renew" means (a conditional UPDATE on its own row) and the body calls `touch()` on
each progress report and `check()` before each write. Only the lowest layer, so both apps import it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The worker can no longer show that it holds the lease: the body stops before writing anything more."""


def worker_name(node: str | None = None) -> str:
    """Who holds a lease: the Celery node (or the host) and the process id that runs the work."""
    return f"{node or socket.gethostname()} pid {os.getpid()}"


def worker_is_dead_sibling(holder: str, node: str | None = None) -> bool:
    """True when `holder` ran on this node in a process that no longer exists (a killed pool child)."""
    name, _, pid = holder.rpartition(" pid ")
    if name != (node or socket.gethostname()) or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_deadline():
    """When a lease taken or renewed now expires."""
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


class Heartbeat:
    """A daemon thread that renews a lease every third of JOB_LEASE_SECONDS.

    `renew()` returns True while the work is still ours and False once it visibly is not (cancelled,
    reaped, superseded); an exception counts as a failure and is retried. `lost` is set, with `reason`,
    when the work is not ours, after `max_failures` failed renewals in a row, or when no `touch()` came
    for `stall_seconds`; `on_stall(reason)` (best effort) lets the app note a stall on its row.
    """

    def __init__(
        self,
        *,
        name: str,
        renew: Callable[[], bool],
        lease_seconds: float | None = None,
        stall_seconds: float | None = None,
        max_failures: int | None = None,
        on_stall: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.renew = renew
        lease = settings.JOB_LEASE_SECONDS if lease_seconds is None else lease_seconds
        self.period = max(lease / 3.0, 0.2)
        self.stall_seconds = settings.JOB_STALL_SECONDS if stall_seconds is None else stall_seconds
        self.max_failures = max(1, settings.JOB_HEARTBEAT_MAX_FAILURES if max_failures is None else max_failures)
        self.on_stall = on_stall
        self.lost = threading.Event()
        self.reason = ""
        self.failures = 0  # failed renewals in a row
        self.renewals = 0  # successful renewals, all told
        self._stop = threading.Event()
        self._last_touch = time.monotonic()
        self._thread: threading.Thread | None = None

    # --- the body's side ---
    def touch(self) -> None:
        """The body reported progress: it is not hung."""
        self._last_touch = time.monotonic()

    def check(self) -> None:
        """Raise LeaseLost once the lease can no longer be shown to be ours."""
        if self.lost.is_set():
            raise LeaseLost(self.reason)

    def start(self) -> Heartbeat:
        self._last_touch = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when the heartbeat stops; True if it stopped."""
        return self._stop.wait(seconds)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- the thread ---
    def _give_up(self, reason: str) -> None:
        self.reason = reason
        self.lost.set()

    def _retry_delay(self) -> float:
        """Backoff after the n-th failure in a row: period/2^(N-1), doubling, so that N failures span about
        one period and the heartbeat gives up while the lease (three periods) still runs."""
        return self.period * 2 ** (self.failures - self.max_failures)

    def _run(self) -> None:
        delay = self.period
        try:
            while not self._stop.wait(delay):
                quiet = time.monotonic() - self._last_touch
                if quiet > self.stall_seconds:
                    self._give_up(
                        f"no progress report for {quiet:.0f} s (JOB_STALL_SECONDS={self.stall_seconds:g}): "
                        "the lease is no longer renewed and the sweeper re-sends the work"
                    )
                    logger.warning("%s: %s", self.name, self.reason)
                    self._note_stall()
                    return
                try:
                    ours = self.renew()
                except Exception as error:  # noqa: BLE001 - a database blip must not end the renewals
                    self.failures += 1
                    logger.warning(
                        "%s: renewal %d of %d in a row failed: %s", self.name, self.failures, self.max_failures, error
                    )
                    _close_connection()  # the next try opens a fresh connection
                    if self.failures >= self.max_failures:
                        self._give_up(
                            f"the lease could not be renewed {self.failures} times in a row "
                            f"(JOB_HEARTBEAT_MAX_FAILURES={self.max_failures}); last error: {error}"
                        )
                        return
                    delay = self._retry_delay()
                    continue
                self.failures, delay = 0, self.period
                if not ours:
                    self._give_up("no longer this worker's (cancelled, reaped or superseded)")
                    return
                self.renewals += 1
        finally:
            _close_connection()

    def _note_stall(self) -> None:
        if self.on_stall is None:
            return
        try:
            self.on_stall(self.reason)
        except Exception:  # noqa: BLE001 - a note, never a reason to fail
            logger.exception("%s: could not note the stall", self.name)


def _close_connection() -> None:
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped all the same
        logger.debug("closing a broken database connection failed", exc_info=True)
