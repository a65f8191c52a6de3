"""Round statistics that never hang: real workers killed whole, a Redis restarted without persistence, a Redis
stopped (docs/round-statistics.md). Each test runs its own redis-server (own port, `--save ''`) and its own
Celery worker and beat processes, all killed at teardown."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, Role
from annotation import services
from annotation.models import Round
from tests import factories
from tests.annotation import worlds
from tests.annotation.conftest import client_for
from tests.inference.processes import RedisServer, broker, start_beat, start_worker, wait_for_worker, wait_until

pytestmark = [pytest.mark.integration]
# The round-statistics engineer's ports (17900-17999).
PORTS = {"kill": 17941, "restart": 17942, "stopped": 17943}
FINISHED = ("done", "failed")


def _labelled_round(*, n_latents: int = 6, n_raters: int = 3):
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    raters = [factories.user(role=Role.PHYSICIAN, institution_obj=own) for _ in range(n_raters)]
    sae = worlds.sae_with_examples(n_latents=n_latents, institution=own)
    version = worlds.rubric(by=coordinator)
    round_ = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=n_raters
    )
    worlds.label_everything(round_, choose=lambda a: ("HF", "AKI", "HF")[(a.latent.index + a.rater_id) % 3])
    return round_, coordinator


def _computed(round_: Round) -> int:
    """How many times the round's statistics were written (the closing transaction's audit event)."""
    return AuditEvent.objects.filter(action="round.statistics", object_id=str(round_.pk)).count()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_kill_9_of_the_whole_worker_mid_computation_a_fresh_worker_computes_them_once(tmp_path, own_processes):
    lease, sweep = 3.0, 1.0
    redis_server = RedisServer(PORTS["kill"], tmp_path / "redis.log").start()
    own_processes.append(redis_server)
    env = {"JOB_LEASE_SECONDS": str(lease), "JOB_SWEEP_SECONDS": str(sweep), "JOB_QUEUED_GRACE_SECONDS": "30"}
    # 40 latents × 5 raters: about ten seconds of computation on two cores, long enough to be killed in.
    round_, coordinator = _labelled_round(n_latents=40, n_raters=5)
    with broker(redis_server.url) as app:
        workers = {}
        for name in ("one@stats", "two@stats"):  # the fresh worker is up before the kill
            workers[name] = start_worker(name=name, broker=redis_server.url, log=tmp_path / f"{name}.log", **env)
            own_processes.append(workers[name])
            wait_for_worker(app, name, workers[name])
        beat = start_beat(broker=redis_server.url, log=tmp_path / "beat.log", schedule=tmp_path / "schedule", **env)
        own_processes.append(beat)
        services.round_close(round=round_, by=coordinator)
        running = wait_until(
            lambda: Round.objects.filter(pk=round_.pk, statistics_status="running").first(),
            timeout=120,
            what="a worker to start computing",
            poll=0.05,
        )
        holder = running.statistics_worker
        victim = next(name for name in workers if holder.startswith(name))
        fresh = next(name for name in workers if name != victim)
        workers[victim].kill()  # SIGKILL to the main process and its pool child: nobody acknowledges or reports
        killed_at = time.monotonic()
        assert Round.objects.get(pk=round_.pk).statistics_status == "running" and _computed(round_) == 0
        wait_until(
            lambda: Round.objects.filter(pk=round_.pk, statistics_attempts=2).exists(),
            timeout=120,
            what="the sweeper to hand the computation to the fresh worker",
            poll=0.05,
        )
        reclaimed_after = time.monotonic() - killed_at
        finished = wait_until(
            lambda: Round.objects.filter(pk=round_.pk, statistics_status__in=FINISHED).first(),
            timeout=240,
            what="the statistics to be computed again",
            detail=lambda: Round.objects.values("statistics_status", "statistics_message").get(pk=round_.pk),
        )
        recovered_after = time.monotonic() - killed_at
    assert finished.statistics_status == "done", finished.statistics_message
    assert finished.statistics_attempts == 2 and finished.statistics_worker.startswith(fresh)
    assert _computed(round_) == 1  # written once, by the fresh worker
    assert "annotation.sweep_round_statistics" in (tmp_path / "beat.log").read_text()
    fresh_log = (tmp_path / f"{fresh}.log").read_text()
    assert "lease expired" in fresh_log and holder in fresh_log  # the sweeper said why it re-sent them
    # Lease + one sweep, then a computation of ~10 s on a loaded two-core machine: bounded generously.
    print(
        f"kill -9 to re-claimed by the fresh worker: {reclaimed_after:.1f} s, to statistics done: "
        f"{recovered_after:.1f} s (lease {lease} s, sweep {sweep} s)"
    )
    assert recovered_after < lease + sweep + 90, recovered_after


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_statistics_queued_when_a_redis_without_persistence_restarts_are_computed(tmp_path, own_processes):
    redis_server = RedisServer(PORTS["restart"], tmp_path / "redis.log").start()
    own_processes.append(redis_server)
    env = {"JOB_SWEEP_SECONDS": "1", "JOB_QUEUED_GRACE_SECONDS": "2"}
    round_, coordinator = _labelled_round()
    with broker(redis_server.url):
        services.round_close(round=round_, by=coordinator)
        import redis

        client = redis.Redis(port=redis_server.port)
        wait_until(lambda: client.llen("cpu") == 1, timeout=10, what="the message on the broker")
        redis_server.stop()
        redis_server.start()  # no persistence: the message is gone
        assert client.llen("cpu") == 0
        assert Round.objects.get(pk=round_.pk).statistics_status == "queued"
        own_processes.append(
            start_beat(broker=redis_server.url, log=tmp_path / "beat.log", schedule=tmp_path / "schedule", **env)
        )
        own_processes.append(
            start_worker(name="after@restart", broker=redis_server.url, log=tmp_path / "worker.log", **env)
        )
        finished = wait_until(
            lambda: Round.objects.filter(pk=round_.pk, statistics_status__in=FINISHED).first(),
            timeout=180,
            what="the queued statistics to be computed without anyone pressing a button",
            detail=lambda: Round.objects.values("statistics_status", "statistics_message").get(pk=round_.pk),
        )
    assert finished.statistics_status == "done", finished.statistics_message
    assert finished.statistics_attempts == 1 and _computed(round_) == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_redis_stopped_close_and_recompute_answer_503_and_change_nothing(tmp_path, own_processes):
    redis_server = RedisServer(PORTS["stopped"], tmp_path / "redis.log").start()
    own_processes.append(redis_server)
    closed, coordinator = _labelled_round()
    open_round = worlds.make_round(
        by=coordinator,
        sae=closed.sae,
        version=closed.rubric_version,
        institutions=list(closed.institutions.all()),
        raters_list=[a.rater for a in closed.assignments.all()],
        kind="production",
    )
    api = client_for(coordinator)
    page = Client()
    page.force_login(coordinator)
    with broker(redis_server.url):
        services.round_close(round=closed, by=coordinator)
        redis_server.stop()
        before = Round.objects.values().get(pk=closed.pk)
        events = AuditEvent.objects.count()

        started = time.monotonic()
        response = api.post(f"/api/v1/rounds/{closed.pk}/statistics/")
        assert response.status_code == 503, response.content
        assert "job queue is not reachable" in response.json()["detail"]
        response = api.post(f"/api/v1/rounds/{open_round.pk}/close/")
        assert response.status_code == 503, response.content
        assert "nothing was changed" in response.json()["detail"]
        response = page.post(f"/rounds/{open_round.pk}/close/", {"confirmed": "yes"}, follow=True)
        elapsed = time.monotonic() - started
    text = response.content.decode()
    assert "job queue is not reachable" in text and "Round closed" not in text  # the real state, no false success
    assert Round.objects.values().get(pk=closed.pk) == before
    open_round.refresh_from_db()
    assert (open_round.status, open_round.statistics_status, open_round.closed_at) == ("open", "none", None)
    assert AuditEvent.objects.count() == events  # no close, no statistics request recorded
    print(f"three refusals with Redis stopped: {elapsed * 1000:.0f} ms")
    assert elapsed < 10, elapsed  # three refusals, each bounded by the broker check


@pytest.mark.django_db
def test_the_sweeper_resends_an_expired_lease_drops_a_duplicate_and_gives_up_saying_why(settings):
    settings.JOB_MAX_ATTEMPTS = 2
    round_, coordinator = _labelled_round(n_latents=4, n_raters=2)
    services.round_close(round=round_, by=coordinator)
    round_.refresh_from_db()
    token = round_.statistics_token
    past, future = timezone.now() - timedelta(seconds=5), timezone.now() + timedelta(seconds=60)
    lost = {"statistics_status": "running", "statistics_worker": "gone@host pid 1", "statistics_attempts": 1}
    Round.objects.filter(pk=round_.pk).update(**lost, statistics_lease_expires_at=past)

    assert services.round_statistics_sweep()["requeued"] == 1
    round_.refresh_from_db()
    assert round_.statistics_status == "queued" and round_.statistics_token == token
    assert "lease expired" in round_.statistics_message and "gone@host pid 1" in round_.statistics_message
    assert "attempt 2 of 2" in round_.statistics_message

    # Another worker holds a live lease: a duplicate delivery computes nothing.
    held = {"statistics_status": "running", "statistics_worker": "other@host pid 2", "statistics_attempts": 2}
    Round.objects.filter(pk=round_.pk).update(**held, statistics_lease_expires_at=future)
    assert services.round_statistics_run(round_id=round_.pk, token=token) == "dropped"
    assert services.round_statistics_sweep() == {"requeued": 0, "failed": 0, "resent": 0}

    # That worker dies too: the attempts are used up, the round fails and says why.
    Round.objects.filter(pk=round_.pk).update(statistics_lease_expires_at=past)
    assert services.round_statistics_sweep()["failed"] == 1
    round_.refresh_from_db()
    assert round_.statistics_status == "failed"
    assert "lease expired" in round_.statistics_message and "other@host pid 2" in round_.statistics_message
    assert "gave up after 2 attempts (JOB_MAX_ATTEMPTS=2)" in round_.statistics_message
    assert _computed(round_) == 0
    # "Recompute statistics" starts afresh.
    services.round_statistics_request(round=round_, by=coordinator)
    round_.refresh_from_db()
    assert (round_.statistics_status, round_.statistics_attempts) == ("queued", 0)
    assert services.round_statistics_run(round_id=round_.pk, token=round_.statistics_token) == "done"
    assert _computed(round_) == 1
