"""Abuse limits: login lockout (django-axes), API throttles per user and per address, password policy."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Role
from tests import factories

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_fifty_wrong_passwords_then_the_right_one_does_not_log_in():
    factories.user(role=Role.PHYSICIAN, username="dr-target")
    client = Client()
    statuses = [
        client.post("/accounts/login/", {"username": "dr-target", "password": f"guess-{i}"}).status_code
        for i in range(50)
    ]
    assert statuses[0] == 200  # the form again, with its error
    assert statuses[-1] == 429
    response = client.post("/accounts/login/", {"username": "dr-target", "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed log-ins" in response.content
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # still sent to the login page


@pytest.mark.django_db
def test_lockout_is_per_username_and_address_so_a_colleague_still_logs_in():
    factories.user(role=Role.PHYSICIAN, username="dr-target")
    factories.user(role=Role.PHYSICIAN, username="dr-colleague")
    attacker = Client()
    for i in range(12):
        attacker.post("/accounts/login/", {"username": "dr-target", "password": f"guess-{i}"})
    colleague = Client()
    response = colleague.post("/accounts/login/", {"username": "dr-colleague", "password": PASSWORD})
    assert response.status_code == 302
    assert "_auth_user_id" in colleague.session


@pytest.mark.django_db
def test_a_right_password_below_the_limit_logs_in():
    factories.user(role=Role.PHYSICIAN, username="dr-typo")
    client = Client()
    for i in range(3):
        client.post("/accounts/login/", {"username": "dr-typo", "password": f"typo-{i}"})
    assert client.post("/accounts/login/", {"username": "dr-typo", "password": PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_api_throttles_each_user(settings):
    settings.API_THROTTLE_USER_RATE = "5/minute"
    first, second = factories.user(role=Role.RESEARCHER), factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(first)
    statuses = [client.get("/api/v1/me/").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429, 429]
    assert "Retry-After" in client.get("/api/v1/me/")
    other = APIClient()
    other.force_authenticate(second)
    assert other.get("/api/v1/me/").status_code == 200  # a separate budget


@pytest.mark.django_db
def test_api_throttles_anonymous_callers_per_address(settings):
    settings.API_THROTTLE_ANON_RATE = "3/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    statuses = [client.get("/api/schema/").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert APIClient(REMOTE_ADDR="203.0.113.8").get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_guessing_tokens_is_throttled_per_address(settings):
    settings.API_THROTTLE_ANON_RATE = "3/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    statuses = [client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer cnc_guess{i}").status_code for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.parametrize("password", ["short", "abc12345", "password123", "qwertyuiop", "1234567890"])
def test_password_policy_rejects_short_and_common_passwords(password):
    with pytest.raises(ValidationError):
        validate_password(password)


def test_password_policy_accepts_a_long_uncommon_passphrase():
    validate_password("ward-round teapot 7 lantern")


# X-Forwarded-For is set by the client unless a trusted proxy overwrites it: with NUM_PROXIES=0 (the
# default) it must not change the address a throttle or the lockout counts (varying it dodged both).
def test_a_forged_forwarded_for_does_not_dodge_the_anonymous_throttle(settings):
    settings.API_THROTTLE_ANON_RATE = "3/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    statuses = [client.get("/api/schema/", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


@pytest.mark.django_db
def test_a_forged_forwarded_for_does_not_dodge_the_failed_token_throttle(settings):
    settings.API_THROTTLE_ANON_RATE = "3/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    statuses = [
        client.get(
            "/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer cnc_guess{i}", HTTP_X_FORWARDED_FOR=f"10.1.0.{i}"
        ).status_code
        for i in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


@pytest.mark.django_db
def test_a_forged_forwarded_for_does_not_dodge_the_login_lockout():
    factories.user(role=Role.PHYSICIAN, username="dr-target")
    client = Client(REMOTE_ADDR="203.0.113.10")
    for i in range(12):
        client.post(
            "/accounts/login/", {"username": "dr-target", "password": f"g-{i}"}, HTTP_X_FORWARDED_FOR=f"10.2.0.{i}"
        )
    response = client.post(
        "/accounts/login/", {"username": "dr-target", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="10.2.9.9"
    )
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(settings):
    settings.API_THROTTLE_ANON_RATE = "3/minute"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = APIClient(REMOTE_ADDR="10.9.9.9")  # every request arrives from the proxy
    first = [proxy.get("/api/schema/", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code for _ in range(4)]
    assert first == [200, 200, 200, 429]
    # another client behind the same proxy has its own budget; a prefix it forged is ignored
    assert proxy.get("/api/schema/", HTTP_X_FORWARDED_FOR="198.51.100.1, 198.51.100.2").status_code == 200


@pytest.mark.django_db
def test_one_address_spraying_passwords_over_many_usernames_is_locked_out(settings):
    settings.AXES_IP_FAILURE_LIMIT = 15
    factories.user(role=Role.PHYSICIAN, username="dr-real")
    sprayer = Client(REMOTE_ADDR="203.0.113.20")
    statuses = [
        sprayer.post("/accounts/login/", {"username": f"user-{i}", "password": "Winter2026!"}).status_code
        for i in range(16)
    ]
    assert statuses[0] == 200
    assert statuses[-1] == 429  # no username was tried twice: the address-wide limit locked it
    assert sprayer.post("/accounts/login/", {"username": "dr-real", "password": PASSWORD}).status_code == 429
    elsewhere = Client(REMOTE_ADDR="203.0.113.21")
    assert elsewhere.post("/accounts/login/", {"username": "dr-real", "password": PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_a_successful_login_does_not_reset_the_address_count(settings):
    settings.AXES_IP_FAILURE_LIMIT = 15
    factories.user(role=Role.PHYSICIAN, username="dr-own")
    client = Client(REMOTE_ADDR="203.0.113.30")
    for i in range(8):
        client.post("/accounts/login/", {"username": f"user-{i}", "password": "x-guess-1"})
    assert client.post("/accounts/login/", {"username": "dr-own", "password": PASSWORD}).status_code == 302
    client.logout()
    statuses = [
        client.post("/accounts/login/", {"username": f"other-{i}", "password": "x-guess-2"}).status_code
        for i in range(8)
    ]
    assert statuses[-1] == 429
