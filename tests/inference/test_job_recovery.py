"""Jobs that never hang: real workers killed whole, a Redis restarted without persistence, a Redis stopped.

Each test runs its own redis-server (own port, `--save ''`) and its own Celery worker and beat
processes, all killed at teardown.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Role
from inference.models import Job
from inference.services import job_create, train_sae_request
from tests import factories
from tests.inference.processes import (
    REDIS_PORTS,
    RedisServer,
    broker,
    start_beat,
    start_worker,
    wait_for_worker,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _corpus_file(tmp_path: Path, name: str, rows: int = 5) -> Path:
    path = tmp_path / f"{name}.jsonl"
    path.write_text(
        "".join(json.dumps({"external_id": f"{name}-{i}", "text": f"note {i} of {name}"}) + "\n" for i in range(rows))
    )
    return path


@pytest.mark.django_db(transaction=True)
def test_kill_9_of_the_whole_worker_mid_training_a_fresh_worker_finishes_from_the_checkpoint(
    tmp_path, own_processes, settings
):
    lease, sweep = 4.0, 1.0
    redis_server = RedisServer(REDIS_PORTS["kill"], tmp_path / "redis.log").start()
    own_processes.append(redis_server)
    env = {"JOB_LEASE_SECONDS": str(lease), "JOB_SWEEP_SECONDS": str(sweep), "JOB_QUEUED_GRACE_SECONDS": "30"}
    path = tmp_path / "acts.npy"
    np.save(path, np.random.default_rng(3).standard_normal((4000, 16)).astype(np.float32))
    with broker(redis_server.url) as app:
        first = start_worker(name="first@kill", broker=redis_server.url, log=tmp_path / "first.log", **env)
        own_processes.append(first)
        wait_for_worker(app, "first@kill", first)
        job = train_sae_request(
            activations_path=str(path),
            arch="topk",
            width=32,
            k=4,
            steps=800,
            batch_size=64,
            checkpoint_every=50,
            out=str(tmp_path / "sae"),
        )
        checkpoints = Path(settings.ARTIFACT_ROOT) / "checkpoints" / str(job.uuid)
        wait_until(
            lambda: Job.objects.get(pk=job.pk).status == "running" and any(checkpoints.glob("step-*")),
            timeout=180,
            what="training to write a checkpoint",
        )
        holder = Job.objects.get(pk=job.pk).worker
        # Beat and a standby worker are up before the kill (as in bench/jobs.py): what is timed is the
        # recovery, not a worker's start-up.
        own_processes.append(
            start_beat(broker=redis_server.url, log=tmp_path / "beat.log", schedule=tmp_path / "beat-schedule", **env)
        )
        second = start_worker(name="second@kill", broker=redis_server.url, log=tmp_path / "second.log", **env)
        own_processes.append(second)
        wait_for_worker(app, "second@kill", second)
        assert Job.objects.get(pk=job.pk).worker == holder  # the standby did not take the running job
        first.kill()  # SIGKILL to the main process and its pool child: nobody acknowledges, nobody reports
        killed_at = time.monotonic()
        assert Job.objects.get(pk=job.pk).status == "running"
        requeued = wait_until(
            lambda: Job.objects.filter(pk=job.pk, attempts=2).first(),
            timeout=120,
            what="the sweeper to hand the job to the fresh worker",
        )
        recovered_after = time.monotonic() - killed_at
        finished = wait_until(
            lambda: (row := Job.objects.get(pk=job.pk)).is_finished and row,
            timeout=300,
            what="the resumed job to finish",
            detail=lambda: Job.objects.get(pk=job.pk).log_tail[-1500:],
        )
    assert finished.status == "succeeded", finished.message
    assert finished.attempts == 2 and "lease expired" in finished.log_tail and holder in finished.log_tail
    assert "resumed at step" in finished.log_tail
    assert finished.worker.startswith("second@kill") and requeued.worker != holder
    assert AuditEvent.objects.filter(action="job.succeed.train_sae", object_id=str(job.pk)).count() == 1
    assert (tmp_path / "sae" / "sae_weights.safetensors").is_file()
    # The lease ran out (at most `lease` after the kill), one sweep later the job was re-sent, and the
    # standby worker claimed it: the margin covers the sweep task and the claim on a loaded machine.
    log = (tmp_path / "beat.log").read_text()
    assert "inference.sweep_jobs" in log
    assert recovered_after < lease + sweep + 6, recovered_after


@pytest.mark.django_db(transaction=True)
def test_a_job_prefetched_by_a_worker_killed_whole_is_re_sent_after_the_grace_not_the_visibility_timeout(
    tmp_path, own_processes, settings
):
    """A worker that prefetches (here --prefetch-multiplier 2) holds a second job's message in Redis
    `unacked` while it runs the first; killed whole, that reservation would block the job for the
    visibility timeout (an hour). The sweeper counts a reservation older than the grace of a job still
    queued as lost and re-sends it."""
    lease, sweep, grace = 4.0, 1.0, 2.0
    redis_server = RedisServer(REDIS_PORTS["prefetched"], tmp_path / "redis.log").start()
    own_processes.append(redis_server)
    env = {"JOB_LEASE_SECONDS": str(lease), "JOB_SWEEP_SECONDS": str(sweep), "JOB_QUEUED_GRACE_SECONDS": str(grace)}
    path = tmp_path / "acts.npy"
    np.save(path, np.random.default_rng(4).standard_normal((4000, 16)).astype(np.float32))
    researcher = factories.user(role=Role.RESEARCHER)
    import redis

    client = redis.Redis(port=redis_server.port)
    with broker(redis_server.url) as app:
        first = start_worker(
            name="greedy@prefetch", broker=redis_server.url, log=tmp_path / "first.log", prefetch=2, **env
        )
        own_processes.append(first)
        wait_for_worker(app, "greedy@prefetch", first)
        training = train_sae_request(
            activations_path=str(path), arch="topk", width=32, k=4, steps=3000, batch_size=64, checkpoint_every=50
        )
        wait_until(lambda: Job.objects.get(pk=training.pk).status == "running", timeout=120, what="training to run")
        waiting = job_create(
            kind=Job.Kind.IMPORT_CORPUS,
            by=researcher,
            parameters={"path": str(_corpus_file(tmp_path, "prefetched")), "name": "prefetched"},
        )
        marker = f"job-{waiting.uuid}".encode()

        def reserved() -> bool:  # the waiting job's message sits in Redis `unacked`, not in a queue
            return any(marker in payload for payload in client.hvals("unacked"))

        wait_until(
            lambda: reserved() and client.llen("cpu") == 0,
            timeout=30,
            what="the busy worker to prefetch the second job's message",
        )
        own_processes.append(
            start_beat(broker=redis_server.url, log=tmp_path / "beat.log", schedule=tmp_path / "beat-schedule", **env)
        )
        standby = start_worker(name="standby@prefetch", broker=redis_server.url, log=tmp_path / "standby.log", **env)
        own_processes.append(standby)
        wait_for_worker(app, "standby@prefetch", standby)
        assert Job.objects.get(pk=waiting.pk).status == "queued"
        first.kill()
        killed_at = time.monotonic()
        assert reserved()  # the dead worker's reservation stays
        finished = wait_until(
            lambda: (row := Job.objects.get(pk=waiting.pk)).is_finished and row,
            timeout=60,
            what="the prefetched job to be re-sent and run",
            detail=lambda: Job.objects.get(pk=waiting.pk).log_tail,
        )
        recovered_after = time.monotonic() - killed_at
        Job.objects.filter(pk=training.pk).update(status=Job.Status.CANCELLED)  # its recovery is the test above
    assert finished.status == "succeeded", finished.message
    assert "re-sent: its message was lost" in finished.log_tail and finished.attempts == 1
    assert finished.worker.startswith("standby@prefetch")
    assert AuditEvent.objects.filter(action="job.succeed.import_corpus", object_id=str(waiting.pk)).count() == 1
    assert recovered_after < grace + sweep + 10, recovered_after


@pytest.mark.django_db(transaction=True)
def test_jobs_queued_when_a_redis_without_persistence_restarts_all_finish(tmp_path, own_processes, settings):
    redis_server = RedisServer(REDIS_PORTS["restart"], tmp_path / "redis.log").start()
    own_processes.append(redis_server)
    env = {"JOB_SWEEP_SECONDS": "1", "JOB_QUEUED_GRACE_SECONDS": "2"}
    settings.JOB_QUEUED_GRACE_SECONDS = 2.0
    researcher = factories.user(role=Role.RESEARCHER)
    with broker(redis_server.url):
        jobs = [
            job_create(
                kind=Job.Kind.IMPORT_CORPUS,
                by=researcher,
                parameters={"path": str(_corpus_file(tmp_path, f"c{i}")), "name": f"restart-{i}"},
            )
            for i in range(3)
        ]
        import redis

        client = redis.Redis(port=redis_server.port)
        wait_until(lambda: client.llen("cpu") == 3, timeout=10, what="three messages on the broker")
        redis_server.stop()
        redis_server.start()  # no persistence: the three messages are gone
        assert client.llen("cpu") == 0
        assert {job.status for job in Job.objects.filter(pk__in=[j.pk for j in jobs])} == {"queued"}
        own_processes.append(
            start_beat(broker=redis_server.url, log=tmp_path / "beat.log", schedule=tmp_path / "beat-schedule", **env)
        )
        worker = start_worker(name="after@restart", broker=redis_server.url, log=tmp_path / "worker.log", **env)
        own_processes.append(worker)
        finished = wait_until(
            lambda: (
                (rows := list(Job.objects.filter(pk__in=[j.pk for j in jobs])))
                and all(row.is_finished for row in rows)
                and rows
            ),
            timeout=240,
            what="every queued job to finish",
        )
    assert {row.status for row in finished} == {"succeeded"}, [(row.status, row.message) for row in finished]
    assert all("re-sent: its message was lost" in row.log_tail for row in finished)
    assert all(row.attempts == 1 for row in finished)


@pytest.mark.django_db(transaction=True)
def test_with_redis_stopped_launching_answers_503_and_leaves_nothing_behind(tmp_path, own_processes, settings):
    redis_server = RedisServer(REDIS_PORTS["stopped"], tmp_path / "redis.log").start()
    own_processes.append(redis_server)
    researcher = factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    uploads = Path(settings.ARTIFACT_ROOT) / "uploads"
    before = set(uploads.iterdir()) if uploads.exists() else set()
    with broker(redis_server.url):
        redis_server.stop()
        started = time.monotonic()
        response = client.post(
            "/api/v1/jobs/import-corpus/",
            {"file": SimpleUploadedFile("notes.jsonl", b'{"external_id": "a", "text": "x"}\n'), "name": "refused"},
            format="multipart",
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.content
        assert "job queue is not reachable" in response.json()["detail"]
        activations = tmp_path / "acts.npy"
        np.save(activations, np.zeros((10, 4), dtype=np.float32))
        with pytest.raises(Exception, match="not reachable"):
            train_sae_request(activations_path=str(activations), arch="topk", width=8, k=2)
    assert Job.objects.count() == 0
    assert (set(uploads.iterdir()) if uploads.exists() else set()) == before
    assert not AuditEvent.objects.filter(action__startswith="job.create").exists()
    assert elapsed < 10, elapsed
