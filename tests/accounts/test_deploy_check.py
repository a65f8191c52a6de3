"""`manage.py check --deploy` is clean with production settings (DEBUG=0, strong key, hosts, PostgreSQL, Redis)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from tests.conftest import ROOT


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    # The browser tests' session flag is theirs, not production's (check --deploy rightly refuses it).
    inherited = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {
        **inherited,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "concord.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://concord.example.org",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://concord@db:5432/concord"),
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "STATIC_ROOT": str(tmp_path / "static"),
        "CONCORD_VAR_DIR": str(tmp_path / "var"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
