"""The heartbeat that renews a running job's lease, against a real PostgreSQL: a killed database connection is
survived, a database that stays unreachable stops the body before its lease could lapse, and a body that
stops reporting loses its lease so that the sweeper re-sends it."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from inference.models import Job
from inference.progress import JobLost
from inference.services import job_run, jobs_sweep
from tests.inference.processes import wait_until
from tests.inference.test_job_transitions import _job

pytestmark = pytest.mark.integration


def _lease(job_id: int):
    return Job.objects.values_list("lease_expires_at", flat=True).get(pk=job_id)


def _terminate_other_connections() -> int:
    """pg_terminate_backend on every other client connection to the test database: the heartbeat's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return len(cursor.fetchall())


def _allow_connections(allow: bool) -> None:
    """ALTER DATABASE … ALLOW_CONNECTIONS, said from the server's maintenance database (PostgreSQL refuses it
    for the database one is connected to)."""
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'ALTER DATABASE "{db["NAME"]}" ALLOW_CONNECTIONS {"true" if allow else "false"}')


@pytest.mark.django_db(transaction=True)
def test_a_killed_database_connection_does_not_end_the_lease_renewals(settings, caplog):
    settings.JOB_LEASE_SECONDS = 0.9  # a renewal every 0.3 s
    settings.JOB_HEARTBEAT_MAX_FAILURES = 5
    job = _job()
    seen = {}

    def work(row, progress):
        first = _lease(row.pk)
        wait_until(lambda: _lease(row.pk) != first, timeout=10, what="a first renewal (the heartbeat connected)")
        seen["terminated"] = _terminate_other_connections()
        killed_at = timezone.now()
        # Renewed again after the kill: the heartbeat retried on a fresh connection instead of dying.
        renewed_after = killed_at + timedelta(seconds=settings.JOB_LEASE_SECONDS)
        wait_until(lambda: _lease(row.pk) > renewed_after, timeout=10, what="a renewal after the kill")
        progress(0.9, "still ours")
        return {"ok": True}

    finished = job_run(job_id=job.pk, work=work)
    assert seen["terminated"] >= 1
    assert "renewal 1 of 5 in a row failed" in caplog.text  # the kill was noticed, and survived
    assert finished.status == "succeeded", finished.message


@pytest.mark.django_db(transaction=True)
def test_a_database_that_stays_unreachable_stops_the_body_before_its_lease_lapses(settings):
    settings.JOB_LEASE_SECONDS = 3.0  # a renewal every second
    settings.JOB_HEARTBEAT_MAX_FAILURES = 3  # retried after 0.25 s and 0.5 s, then given up
    job = _job()
    seen = {}

    def work(row, progress):
        first = _lease(row.pk)
        wait_until(lambda: _lease(row.pk) != first, timeout=10, what="a first renewal")
        _allow_connections(False)  # this test's connection stays; any new one is refused
        try:
            _terminate_other_connections()
            deadline = time.monotonic() + 20
            pause = threading.Event()
            while True:  # the body's work: a progress report every 50 ms
                try:
                    progress(0.5, "working")
                except JobLost as lost:
                    seen["stopped"], seen["at"] = str(lost), timezone.now()
                    raise
                assert time.monotonic() < deadline, "the body was never stopped"
                pause.wait(0.05)
        finally:
            _allow_connections(True)

    finished = job_run(job_id=job.pk, work=work)
    assert "could not be renewed 3 times in a row" in seen["stopped"]
    # It stopped while its last lease still ran: no other worker could have claimed the job meanwhile.
    assert seen["at"] < finished.lease_expires_at
    assert finished.status == "running" and finished.result == {}  # nothing written; the sweeper re-sends it


@pytest.mark.django_db(transaction=True)
def test_a_body_that_stops_reporting_loses_its_lease_and_the_sweeper_resends_it(settings):
    settings.JOB_LEASE_SECONDS = 0.9
    settings.JOB_STALL_SECONDS = 1.5
    settings.JOB_MAX_ATTEMPTS = 3
    job = _job()
    seen = {}

    def work(row, progress):
        progress(0.1, "started, then hangs")
        # A hung body reports nothing more; its heartbeat thread is alive but must stop renewing.
        wait_until(lambda: _lease(row.pk) < timezone.now(), timeout=20, what="the lease to lapse")
        seen["swept"] = jobs_sweep()
        try:
            progress(0.2, "woke up")
        except JobLost as lost:
            seen["stopped"] = str(lost)
            raise
        return {}

    finished = job_run(job_id=job.pk, work=work)
    assert seen["swept"]["requeued"] == 1
    assert "no progress report" in seen["stopped"]
    assert finished.status == "queued" and "lease expired" in finished.message
    assert "heartbeat stopped: no progress report" in finished.log_tail
