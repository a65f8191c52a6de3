"""`make run`'s server (`run_embedded`): a SIGTERM stops its worker and beat too, and the embedded broker
keeps every file under the var folder (none in the folder it was started from)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def test_sigterm_stops_worker_and_beat_and_the_broker_stays_in_var(tmp_path):
    var, started_in = tmp_path / "var", tmp_path / "cwd"
    started_in.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(CONCORD_VAR_DIR=str(var), PYTHONPATH=str(ROOT), DEBUG="1")
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput"],
        env=env,
        check=True,
        cwd=started_in,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "run_embedded", "--port", str(port)],
        env=env,
        cwd=started_in,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "run_embedded did not serve"
            time.sleep(0.2)
        children = _children(server.pid)
        assert len(children) == 2  # the worker and beat
        deadline = time.monotonic() + 60  # the worker declares its queues once it has started
        while not (var / "broker" / "control" / "cpu.exchange").exists():
            assert time.monotonic() < deadline, "the worker never declared its queues"
            time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        deadline = time.monotonic() + 30
        while any(_alive(child) for child in children):
            assert time.monotonic() < deadline, "worker or beat outlived run_embedded"
            time.sleep(0.2)
        assert list(started_in.iterdir()) == []
    finally:
        if server.poll() is None:
            server.kill()
