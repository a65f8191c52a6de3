"""The compose file: beat, health checks and one shared artifact store; validated by docker when present."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _services() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]


def test_compose_runs_one_beat_and_health_checks_every_long_running_service():
    services = _services()
    assert "celery -A config beat" in services["beat"]["command"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("db", "redis", "web", "worker-cpu", "worker-gpu", "beat"):
        assert services[name]["healthcheck"]["test"], name
    assert "-Q gpu" in services["worker-gpu"]["command"] and "-Q cpu" in services["worker-cpu"]["command"]


def test_compose_web_workers_and_beat_share_one_artifact_store():
    services = _services()
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        assert "artifacts:/srv/concord" in services[name]["volumes"], name
        assert services[name]["environment"]["ARTIFACT_ROOT"] == "/srv/concord/artifacts", name


def test_the_compose_header_file_and_env_example_name_the_same_settings():
    """Every variable the compose file reads is in env.example, and its header names no setting the file
    does not read (it once spoke of ARTIFACT_NFS_* while the file read ARTIFACT_VOLUME_*)."""
    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))  # $${...} is the container shell's
    example = set(re.findall(r"^(\w+)=", (DEPLOY / "env.example").read_text(), flags=re.MULTILINE))
    assert {"ARTIFACT_VOLUME_TYPE", "ARTIFACT_VOLUME_OPTIONS", "ARTIFACT_VOLUME_DEVICE"} <= used
    assert used <= example, sorted(used - example)
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    named = set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", header))  # ARTIFACT_NFS_* counts
    assert named <= used | {"DATABASE_URL", "CELERY_BROKER_URL", "ARTIFACT_ROOT"}, sorted(named - used)


def test_docker_compose_config_accepts_the_file(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose is not installed")
    shutil.copy(DEPLOY / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(DEPLOY / "env.example", tmp_path / ".env")
    result = subprocess.run(
        [docker, "compose", "-f", str(tmp_path / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
