"""Schemathesis over /api/schema/: every operation, fuzzed as a physician, a coordinator and a researcher
(each with a personal API token), answers without a server error and with responses that conform to the schema."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import checks

from accounts.tokens import api_token_create
from tests.annotation.conftest import api_world  # noqa: F401 - fixture

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

# Writes take input worth fuzzing; reads mostly take ids and filters. Bounded to keep CI near a minute.
EXAMPLES_PER_READ, EXAMPLES_PER_WRITE = 3, 14
CHECKS = [checks.not_a_server_error, checks.response_schema_conformance, checks.content_type_conformance]


def _with_nul(value):
    """The same JSON value with a NUL byte appended to every string (keys kept); an empty list gets one
    such string, since minimal examples are often empty lists (e.g. a list of institution codes)."""
    if isinstance(value, str):
        return value + "\x00"
    if isinstance(value, dict):
        return {key: _with_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_nul(item) for item in value] or ["x\x00"]
    return value


def _fuzz(schema, headers: dict[str, str]) -> tuple[int, int, list[str]]:
    """Run every operation of the schema; returns (operations, cases, failures). Besides the generated
    cases, the first case of each operation is replayed with a NUL in every string of its body and query:
    PostgreSQL refuses NUL, so any field that reaches the database unchecked shows up as a 500."""
    n_operations, n_cases, failures = 0, 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        n_operations += 1
        hostile_done = False

        examples = EXAMPLES_PER_READ if operation.method.upper() == "GET" else EXAMPLES_PER_WRITE

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case):
            nonlocal n_cases, hostile_done
            n_cases += 1
            response = case.call(headers=headers)
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as error:  # noqa: BLE001 - every failure is collected and reported together
                failures.append(f"{operation.method.upper()} {operation.path}: {str(error)[:400]}")
            if not hostile_done and (isinstance(case.body, (dict, list)) or case.query):
                hostile_done = True
                n_cases += 1
                if isinstance(case.body, (dict, list)):
                    case.body = _with_nul(case.body)
                case.query = _with_nul(case.query) if case.query else case.query
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    failures.append(f"{operation.method.upper()} {operation.path} with NUL: {response.status_code}")

        run()
    return n_operations, n_cases, failures


@pytest.fixture
def _connections_kept_open():
    """The WSGI app closes the database connection after each request; the test's transaction lives on it
    (Django's own test client disconnects the same handler)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("_connections_kept_open")
@pytest.mark.parametrize("role", ["physician", "coordinator", "researcher"])
def test_schemathesis_finds_no_server_error_and_no_nonconforming_response(api_world, role, settings):
    import schemathesis

    from config.wsgi import application

    settings.API_THROTTLE_USER_RATE = "100000/minute"  # the fuzzer is one user sending many requests
    if role == "researcher":  # job launchers: the import, cache, train, mine, sweep and steering operations
        from accounts.models import Role
        from tests import factories

        user = factories.user(role=Role.RESEARCHER, institution_obj=api_world["own"], username="researcher-own")
    else:
        user = api_world["raters"][0] if role == "physician" else api_world["coordinator"]
    _, secret = api_token_create(user=user, name="schemathesis")
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    started = time.monotonic()
    n_operations, n_cases, failures = _fuzz(schema, {"Authorization": f"Bearer {secret}"})
    seconds = time.monotonic() - started
    print(
        f"schemathesis as {role}: {n_operations} operations, {n_cases} cases, {len(failures)} failures, {seconds:.1f} s"
    )
    assert n_operations >= 40 and n_cases >= n_operations
    assert failures == []
