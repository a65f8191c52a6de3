"""Shared fixtures: artifact folders, a real Celery worker on Redis against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("CONCORD_REQUIRE_SERVICES") == "1"
ROOT = Path(__file__).resolve().parent.parent


def loads_torch(code: str) -> bool:
    """Whether running `code` after django.setup() in a fresh interpreter imports torch (web-side code must not)."""
    program = f"import sys, django; django.setup()\n{code}\nprint('torch' in sys.modules)\n"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip() != "False"


def _unavailable(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (CI=true requires it)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _artifact_root(settings, tmp_path_factory):
    """Each test session writes artifacts under one temporary folder, shared with the worker."""
    root = tmp_path_factory.getbasetemp() / "artifacts"
    root.mkdir(exist_ok=True)
    settings.ARTIFACT_ROOT = root
    return root


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests create many users; PBKDF2 at production strength would spend most of the suite hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def postgres(settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        _unavailable("PostgreSQL is not configured (DATABASE_URL)")
    return connection


@pytest.fixture
def own_processes(postgres):
    """Servers and workers a test starts (its own Redis, workers, beat); every one is killed at teardown, in
    reverse order."""
    started: list = []
    yield started
    for process in reversed(started):
        try:
            process.kill() if hasattr(process, "kill") else process.stop()
        except Exception:  # noqa: BLE001 - teardown goes on to the next process
            pass


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real `celery worker` process consuming the `cpu` and `gpu` queues from Redis, using the test DB."""
    from django.conf import settings
    from django.db import connection

    from config.celery import app

    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis"):
        _unavailable("Redis is not configured (CELERY_BROKER_URL)")
    if connection.vendor != "postgresql":
        _unavailable("the worker tests need PostgreSQL (DATABASE_URL)")
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    import redis

    redis.Redis.from_url(broker).flushdb()
    artifacts = tmp_path_factory.getbasetemp() / "artifacts"
    artifacts.mkdir(exist_ok=True)
    log_path = tmp_path_factory.getbasetemp() / "celery-worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "ARTIFACT_ROOT": str(artifacts),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "CONCORD_VAR_DIR": str(tmp_path_factory.getbasetemp() / "worker-var"),
    }
    hostname = f"concord-test-{os.getpid()}@localhost"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "cpu,gpu",
                "--pool=solo",
                "--concurrency=1",
                "-n",
                hostname,
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not app.control.ping(destination=[hostname], timeout=1.0):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def celery_worker(celery_worker_process):
    """The session's worker for one test; before the test's database is flushed, waits until the worker has
    nothing queued or in hand. Work the test set off but did not wait for (a statistics task after a round
    closed, say) would otherwise run during the flush: its reads and the flush's TRUNCATE deadlocked in CI."""
    yield celery_worker_process
    wait_until_worker_idle()


def wait_until_worker_idle(*, timeout: float = 120.0) -> None:
    """Poll the broker until the `cpu` and `gpu` queues are empty and no message is unacknowledged (tasks
    are acknowledged late: a message stays unacknowledged while its task runs)."""
    import redis
    from django.conf import settings

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    deadline = time.monotonic() + timeout
    while True:
        queued = sum(broker.llen(key) for pattern in ("cpu*", "gpu*") for key in broker.scan_iter(match=pattern))
        if queued == 0 and broker.hlen("unacked") == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the Celery worker was still busy after {timeout:.0f} s ({queued} queued)")
        time.sleep(0.1)


def wait_for_job(job_id: int, *, timeout: float = 120.0):
    """Poll the Job row until it reaches a final state (synchronisation on real state, not a sleep)."""
    from inference.models import Job

    deadline = time.monotonic() + timeout
    seen_progress: list[float] = []
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        seen_progress.append(job.progress)
        if job.is_finished:
            job.seen_progress = seen_progress
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job.status} {job.message}")
