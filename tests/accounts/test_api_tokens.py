"""Personal API tokens: created on a page (shown once, stored as sha256), used as Bearer, last use shown,
revoked; every action audited; one user never sees or revokes another's."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken, AuditEvent, Role
from tests import factories

pytestmark = pytest.mark.django_db


def _create(client: Client, name: str) -> str:
    response = client.post("/account/tokens/", {"name": name})
    assert response.status_code == 200
    match = re.search(rb'id="new-token-secret">([^<]+)<', response.content)
    assert match, response.content[:500]
    return match.group(1).decode()


@pytest.fixture
def researcher_client():
    researcher = factories.user(role=Role.RESEARCHER, username="res-rae")
    client = Client()
    client.force_login(researcher)
    return researcher, client


def test_a_researcher_creates_a_token_seen_once_and_stored_hashed(researcher_client):
    researcher, client = researcher_client
    secret = _create(client, "nightly export")
    token = ApiToken.objects.get(user=researcher)
    assert token.name == "nightly export"
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {token.key_hash, token.hint, token.name}
    page = client.get("/account/tokens/")
    assert secret.encode() not in page.content  # shown once, never again
    assert b"nightly export" in page.content and token.hint.encode() in page.content and b"never" in page.content
    assert page["Cache-Control"].startswith("max-age=0") or "no-store" in page["Cache-Control"]
    assert AuditEvent.objects.filter(action="api_token.create", actor=researcher, object_id=str(token.pk)).exists()


def test_the_token_authenticates_scripts_and_records_its_last_use(researcher_client):
    researcher, client = researcher_client
    secret = _create(client, "script")
    api = APIClient()
    response = api.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 200 and response.json()["username"] == "res-rae"
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {secret}").status_code == 200
    token = ApiToken.objects.get(user=researcher)
    assert token.last_used_at is not None
    assert b"never" not in client.get("/account/tokens/").content
    assert AuditEvent.objects.filter(action="api_token.use", object_id=str(token.pk)).count() == 1  # once a minute


def test_a_revoked_token_answers_401_and_the_revocation_is_audited(researcher_client):
    researcher, client = researcher_client
    secret = _create(client, "old laptop")
    token = ApiToken.objects.get(user=researcher)
    assert client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 302
    response = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoke", object_id=str(token.pk)).exists()
    assert b"revoked" in client.get("/account/tokens/").content


def test_a_deactivated_user_token_stops_working(researcher_client):
    researcher, client = researcher_client
    secret = _create(client, "script")
    researcher.is_active = False
    researcher.save(update_fields=["is_active"])
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_nobody_sees_or_revokes_another_users_token(researcher_client):
    researcher, client = researcher_client
    _create(client, "mine")
    token = ApiToken.objects.get(user=researcher)
    other = Client()
    other.force_login(factories.user(role=Role.RESEARCHER))
    assert b"mine" not in other.get("/account/tokens/").content
    assert other.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("role", [Role.PHYSICIAN, Role.SENIOR, Role.COORDINATOR, Role.RESEARCHER, Role.ADMIN])
def test_every_role_that_uses_the_api_may_create_tokens(role):
    client = Client()
    client.force_login(factories.user(role=role))
    secret = _create(client, "mine")
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_the_token_page_needs_a_login_and_a_name():
    assert Client().get("/account/tokens/").status_code == 302
    client = Client()
    client.force_login(factories.user(role=Role.RESEARCHER))
    response = client.post("/account/tokens/", {"name": ""})
    assert response.status_code == 200 and not ApiToken.objects.exists()
