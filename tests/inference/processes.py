"""Real processes for the job tests: a Redis of the test's own, Celery workers and beat, killed whole.

Every process starts in its own session so that `kill()` reaches the worker's main process and its pool
children at once (kill -9 of the whole worker), and every one is stopped at teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import _unavailable

ROOT = Path(__file__).resolve().parents[2]
# Ports of this test module's own servers (the jobs engineer's range 17500-17599).
REDIS_PORTS = {"restart": 17531, "stopped": 17532, "kill": 17533, "sweep": 17534, "bench": 17535, "prefetched": 17536}


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


class RedisServer:
    """`redis-server --port P --save ''`: no persistence, so a restart loses every queued message."""

    def __init__(self, port: int, log: Path) -> None:
        if shutil.which("redis-server") is None:
            _unavailable("redis-server is not installed")  # skipped locally, a failure under CI=true
        self.port = port
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if not _port_free(self.port):
            pytest.fail(f"port {self.port} is taken; a previous run left a server behind")
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start: {self.log.read_text()[-2000:]}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def worker_env(broker: str, **extra: str) -> dict[str, str]:
    from django.db import connection

    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    from django.conf import settings

    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "ARTIFACT_ROOT": str(settings.ARTIFACT_ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        **extra,
    }


class CeleryProcess:
    """A `celery worker` or `celery beat`, started in its own session."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        with log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL to the whole process group: the main process and every pool child."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process.poll() is None


def start_worker(
    *,
    name: str,
    broker: str,
    log: Path,
    queues: str = "cpu,gpu",
    pool: str = "prefork",
    prefetch: int | None = None,
    **env: str,
) -> CeleryProcess:
    """`prefetch`: the worker's --prefetch-multiplier (the settings' 1 when None)."""
    args = [
        "worker",
        "-Q",
        queues,
        f"--pool={pool}",
        "--concurrency=1",
        "-n",
        name,
        "-l",
        "info",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        *([f"--prefetch-multiplier={prefetch}"] if prefetch is not None else []),
    ]
    return CeleryProcess(args, worker_env(broker, **env), log)


def start_beat(*, broker: str, log: Path, schedule: Path, **env: str) -> CeleryProcess:
    args = ["beat", "-l", "info", "-s", str(schedule)]
    return CeleryProcess(args, worker_env(broker, **env), log)


def wait_for_worker(app, name: str, process: CeleryProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not app.control.ping(destination=[name], timeout=1.0):
        if not process.alive() or time.monotonic() > deadline:
            pytest.fail(f"worker {name} did not start:\n{process.log.read_text()[-3000:]}")


@contextmanager
def broker(url: str):
    """Point this test process's Celery app at `url` (sends, pings, control), then back."""
    from config.celery import app

    saved = (app.conf.broker_read_url, app.conf.broker_write_url)

    def reset(read: str, write: str) -> None:
        # kombu keeps one pool per broker URL for the process: drop only the app's references to them.
        app._pool = None
        app.amqp._producer_pool = None
        app.conf.broker_read_url, app.conf.broker_write_url = read, write

    reset(url, url)
    try:
        yield app
    finally:
        reset(*saved)


def wait_until(predicate, *, timeout: float, what: str, poll: float = 0.1, detail=None):
    """Poll real state until `predicate()` is truthy (synchronisation, not a sleep standing in for it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}" + (f"\n{detail()}" if detail is not None else "")
            )
        time.sleep(poll)
