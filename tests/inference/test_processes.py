"""The job tests' own servers follow the suite's CI rule: a missing redis-server skips them on a laptop and
fails them under CI=true (CONCORD_REQUIRE_SERVICES=1), so the recovery tests never skip silently in CI."""

from __future__ import annotations

import pytest

from tests import conftest
from tests.inference.processes import REDIS_PORTS, RedisServer


@pytest.mark.parametrize(("required", "outcome"), [(True, pytest.fail.Exception), (False, pytest.skip.Exception)])
def test_a_missing_redis_server_fails_under_ci_and_skips_elsewhere(tmp_path, monkeypatch, required, outcome):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on this PATH
    monkeypatch.setattr(conftest, "REQUIRE_SERVICES", required)
    try:
        RedisServer(REDIS_PORTS["sweep"], tmp_path / "redis.log")
    except BaseException as stopped:  # noqa: BLE001 - pytest's skip and fail outcomes are BaseExceptions
        caught = stopped
    else:
        caught = None
    assert type(caught) is outcome and "redis-server is not installed" in str(caught), repr(caught)
