"""Job transitions that cannot race: conditional claims, cancel against finish, the lease and the sweeper."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditEvent, Role
from inference.jobs import committing
from inference.models import Job
from inference.progress import worker_name
from inference.services import job_cancel, job_claim, job_create, job_run, jobs_sweep
from tests import factories


def _job(**fields) -> Job:
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, by=factories.user(role=Role.RESEARCHER), enqueue=False)
    if fields:
        Job.objects.filter(pk=job.pk).update(**fields)
        job.refresh_from_db()
    return job


def _marker_work(job, progress):
    """A body that writes one output (an audit event) together with its success."""
    progress(0.5, "half way")
    with committing(progress, {"written": True}):
        audit_record(actor=None, action="test.output", obj=job)
    return {"written": True}


def _outputs(job) -> int:
    return AuditEvent.objects.filter(action="test.output", object_id=str(job.pk)).count()


def _backend_waits_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
def test_a_cancel_that_arrives_while_the_job_commits_waits_then_is_refused():
    job = _job()
    outcome: dict[str, object] = {}

    def cancel_in_another_connection():
        try:
            outcome["pid"] = connection.cursor().connection.info.backend_pid
            outcome["started"].set()
            job_cancel(job=Job.objects.get(pk=job.pk), by=None)
            outcome["cancel"] = "accepted"
        except ValueError as error:
            outcome["cancel"] = str(error)
        finally:
            connections.close_all()

    def work(row, progress):
        with committing(progress, {"written": True}):
            audit_record(actor=None, action="test.output", obj=row)
            outcome["started"] = threading.Event()
            thread = threading.Thread(target=cancel_in_another_connection)
            thread.start()
            outcome["started"].wait(10)
            # The cancel's UPDATE blocks on the job row this transaction holds: observed, not slept on.
            deadline = timezone.now() + timedelta(seconds=20)
            while not _backend_waits_for_a_lock(outcome["pid"]):
                assert timezone.now() < deadline, "the cancel never reached the row lock"
            outcome["thread"] = thread
        return {"written": True}

    finished = job_run(job_id=job.pk, work=work)
    outcome["thread"].join(20)
    assert finished.status == "succeeded" and finished.result == {"written": True}
    assert "already finished (succeeded)" in outcome["cancel"]
    assert _outputs(job) == 1


@pytest.mark.django_db(transaction=True)
def test_a_job_cancelled_before_it_commits_writes_nothing_and_stays_cancelled():
    job = _job()

    def work(row, progress):
        progress(0.2, "working")
        job_cancel(job=Job.objects.get(pk=row.pk), by=None)  # someone presses cancel
        with committing(progress, {"written": True}):
            audit_record(actor=None, action="test.output", obj=row)
        return {"written": True}

    finished = job_run(job_id=job.pk, work=work)
    assert (finished.status, finished.result, _outputs(job)) == ("cancelled", {}, 0)


@pytest.mark.django_db(transaction=True)
def test_cancel_racing_the_finish_never_ends_succeeded_after_an_accepted_cancel():
    """Many rounds of a real race between two connections: whichever wins, the state is consistent."""
    outcomes = set()
    for _ in range(12):
        job = _job()
        gate = threading.Barrier(2)
        answer: dict[str, str] = {}

        def cancel(job_id=job.pk, gate=gate, answer=answer):
            gate.wait(10)
            try:
                job_cancel(job=Job.objects.get(pk=job_id), by=None)
                answer["cancel"] = "accepted"
            except ValueError:
                answer["cancel"] = "refused"
            finally:
                connections.close_all()

        thread = threading.Thread(target=cancel)
        thread.start()

        def work(row, progress, gate=gate):
            gate.wait(10)
            return _marker_work(row, progress)

        job_run(job_id=job.pk, work=work)
        thread.join(20)
        job.refresh_from_db()
        if answer["cancel"] == "accepted":
            assert (job.status, job.result, _outputs(job)) == ("cancelled", {}, 0)
        else:
            assert (job.status, _outputs(job)) == ("succeeded", 1)
        outcomes.add(job.status)
    assert outcomes <= {"cancelled", "succeeded"}


@pytest.mark.django_db
def test_only_one_of_two_workers_claims_a_job():
    job = _job()
    first = job_claim(job=Job.objects.get(pk=job.pk), worker="node-a pid 1")
    second = job_claim(job=job, worker="node-b pid 2")  # read before the first claim: the same state
    job.refresh_from_db()
    assert (first, second) == (True, False)
    assert (job.status, job.worker, job.attempts) == ("running", "node-a pid 1", 1)
    assert job.lease_expires_at > timezone.now()


@pytest.mark.django_db
def test_a_duplicate_message_while_the_lease_lives_runs_nothing():
    job = _job(
        status=Job.Status.RUNNING,
        worker="elsewhere pid 42",
        attempts=1,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    calls = []
    seen = job_run(job_id=job.pk, work=lambda row, progress: calls.append(1) or {})
    assert calls == [] and (seen.status, seen.worker, seen.attempts) == ("running", "elsewhere pid 42", 1)


@pytest.mark.django_db
def test_a_job_whose_lease_expired_is_claimed_again_and_resumes(settings):
    job = _job(
        status=Job.Status.RUNNING,
        worker="dead-node pid 42",
        attempts=1,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    finished = job_run(job_id=job.pk, work=lambda row, progress: {"ok": True})
    assert (finished.status, finished.attempts, finished.worker) == ("succeeded", 2, worker_name())
    assert "started (attempt 2)" in finished.log_tail


@pytest.mark.django_db
def test_the_sweeper_requeues_an_expired_lease_then_gives_up_saying_why(settings):
    settings.JOB_MAX_ATTEMPTS = 2
    expired = timezone.now() - timedelta(seconds=5)
    retry = _job(status=Job.Status.RUNNING, worker="gone pid 7", attempts=1, lease_expires_at=expired)
    spent = _job(status=Job.Status.RUNNING, worker="gone pid 8", attempts=2, lease_expires_at=expired)
    alive = _job(
        status=Job.Status.RUNNING,
        worker="busy pid 9",
        attempts=1,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    counts = jobs_sweep()
    assert (counts["requeued"], counts["failed"]) == (1, 1)
    retry.refresh_from_db()
    spent.refresh_from_db()
    alive.refresh_from_db()
    assert retry.status == "queued" and "lease expired" in retry.message and "attempt 2 of 2" in retry.message
    assert retry.sent_at is not None and retry.worker == "gone pid 7"
    assert spent.status == "failed" and "gave up after 2 attempts" in spent.message and "gone pid 8" in spent.message
    assert alive.status == "running"
    assert jobs_sweep()["requeued"] == 0  # nothing left to do: the sweep acts once


@pytest.mark.django_db
def test_a_claim_past_the_attempt_limit_fails_the_job(settings):
    settings.JOB_MAX_ATTEMPTS = 1
    job = _job(status=Job.Status.QUEUED, attempts=1)
    calls = []
    finished = job_run(job_id=job.pk, work=lambda row, progress: calls.append(1) or {})
    assert calls == [] and finished.status == "failed" and "gave up after 1 attempts" in finished.message


@pytest.mark.django_db
def test_the_sweeper_gives_a_sweep_training_job_its_lost_mining_job_once(settings):
    from features.models import ActivationSet
    from inference.models import Sweep

    settings.JOB_QUEUED_GRACE_SECONDS = 0
    sae = factories.sae()
    activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model,
        hook_point=sae.hook_point,
        corpus=factories.corpus(),
        artifact_uri="/x",
        n_tokens=1,
    )
    sweep = Sweep.objects.create(name="s", activation_set=activation_set, parameters={"n_top": 7})
    job = _job(
        status=Job.Status.SUCCEEDED,
        result={"sae_id": sae.pk},
        attempts=1,
        finished_at=timezone.now() - timedelta(seconds=5),
    )
    Job.objects.filter(pk=job.pk).update(kind=Job.Kind.TRAIN_SAE, sweep=sweep)
    assert jobs_sweep()["followed_up"] == 1
    assert jobs_sweep()["followed_up"] == 0
    mining = Job.objects.get(kind=Job.Kind.MINE_LATENTS)
    assert mining.parameters == {"sae_id": sae.pk, "n_top": 7} and mining.sweep == sweep


@pytest.mark.django_db
def test_the_heartbeat_does_not_stop_a_job_whose_row_its_connection_cannot_see_yet(settings):
    """A command run inside a caller's transaction: the heartbeat thread's connection does not see the
    uncommitted row, which must not read as 'cancelled'."""
    settings.JOB_LEASE_SECONDS = 0.6  # a heartbeat every 0.2 s
    job = _job()
    beats = []

    def work(row, progress):
        reporter = progress
        while len(beats) < 3:
            beats.append(reporter.heartbeat.is_alive())
            reporter.heartbeat.wait(0.25)  # let a few heartbeats happen
        progress(0.9, "still ours")
        return {"ok": True}

    finished = job_run(job_id=job.pk, work=work)
    assert finished.status == "succeeded" and beats == [True, True, True]


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_the_lease_and_notices_a_cancel(settings):
    settings.JOB_LEASE_SECONDS = 0.6
    job = _job()
    seen = {}

    def work(row, progress):
        first = Job.objects.get(pk=row.pk).lease_expires_at
        deadline = timezone.now() + timedelta(seconds=10)
        while Job.objects.get(pk=row.pk).lease_expires_at == first:  # renewed by the heartbeat thread
            assert timezone.now() < deadline, "the lease was never renewed"
        seen["renewed"] = True
        Job.objects.filter(pk=row.pk).update(status=Job.Status.CANCELLED)
        while not progress.lost.is_set():  # the next heartbeat finds the job no longer ours
            assert timezone.now() < deadline + timedelta(seconds=10), "the heartbeat never noticed"
            progress.heartbeat.wait(0.05)
        progress(0.5, "after cancel")  # raises JobCancelled
        seen["continued"] = True
        return {}

    finished = job_run(job_id=job.pk, work=work)
    assert seen == {"renewed": True} and finished.status == "cancelled"
