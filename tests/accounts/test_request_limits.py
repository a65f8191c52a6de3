"""Size, NUL and nesting limits: clear 400/413 answers naming the field or the limit, never a 500."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from annotation.models import Label
from tests.annotation.conftest import api_world, client_for, own_assignment  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def _nested(depth: int) -> str:
    """JSON text of a string inside `depth` lists (built as text: json.dumps itself would recurse)."""
    return "[" * depth + '"x"' + "]" * depth


def _post_json(client, url: str, body: str):
    return client.generic("POST", url, body, content_type="application/json")


def _round_body(world, **overrides) -> dict:
    body = {
        "name": "round-x",
        "kind": "production",
        "sae": world["sae"].pk,
        "rubric_version": world["version"].pk,
        "institutions": ["own"],
        "selection_rule": "random",
        "n_latents": 2,
    }
    body.update(overrides)
    return body


def test_nul_in_round_institutions_answers_400_naming_the_field(api_world):
    client = client_for(api_world["coordinator"])
    response = client.post("/api/v1/rounds/create/", _round_body(api_world, institutions=["own\x00"]), format="json")
    assert response.status_code == 400
    assert "institutions" in response.json()
    assert "Null characters" in response.json()["institutions"][0]


def test_nul_in_follow_up_answers_400_naming_the_field(api_world):
    client = client_for(api_world["coordinator"])
    response = client.post(
        f"/api/v1/rounds/{api_world['revealed'].pk}/follow-up/",
        {"guidelines": "Look at the peak\x00 token"},
        format="json",
    )
    assert response.status_code == 400
    assert "guidelines" in response.json()


def test_deeply_nested_label_submission_answers_400_naming_the_field(api_world):
    assignment = own_assignment(api_world)
    client = client_for(api_world["raters"][0])
    for depth in (50, 100_000):  # 100,000 levels made Python's JSON decoder raise RecursionError (a 500)
        body = '{"concept_code": "HF", "confidence": 3, "rationale": ' + _nested(depth) + "}"
        response = _post_json(client, f"/api/v1/assignments/{assignment.pk}/label/", body)
        assert response.status_code == 400, (depth, response.content[:200])
        assert response["Content-Type"] == "application/json"
        text = json.dumps(response.json())
        assert "nested" in text
    assert not Label.objects.filter(assignment=assignment).exists()


def test_nul_anywhere_in_nested_json_is_named(api_world):
    client = client_for(api_world["coordinator"])
    body = {
        "name": "r",
        "description": "",
        "guidelines": "",
        "concepts": [{"code": "HF", "name": "Heart failure"}, {"code": "AKI", "name": "Kidney\x00 injury"}],
    }
    response = client.post("/api/v1/rubrics/create/", body, format="json")
    assert response.status_code == 400
    assert "concepts[1].name" in response.json()["concepts"][0]


def test_nul_in_a_query_parameter_answers_400(api_world):
    response = client_for(api_world["coordinator"]).get("/api/v1/latents/", {"search": "a\x00b"})
    assert response.status_code == 400
    assert "search" in response.json()


def test_nul_in_an_html_form_answers_400(api_world, client):
    client.force_login(api_world["coordinator"])
    response = client.post(f"/rounds/{api_world['revealed'].pk}/follow-up/new/", {"guidelines": "a\x00b"})
    assert response.status_code == 400


def test_overlong_rationale_is_refused_naming_the_limit(api_world, settings):
    assignment = own_assignment(api_world)
    client = client_for(api_world["raters"][0])
    response = client.post(
        f"/api/v1/assignments/{assignment.pk}/label/",
        {"concept_code": "HF", "confidence": 3, "rationale": "r" * 1_000_000},
        format="json",
    )
    assert response.status_code == 400
    assert str(settings.MAX_TEXT_CHARS) in response.json()["rationale"][0]
    assert not Label.objects.filter(assignment=assignment).exists()


def test_an_oversized_body_answers_json_413_naming_the_limit(api_world, settings):
    client = client_for(api_world["raters"][0])
    assignment = own_assignment(api_world)
    body = json.dumps({"concept_code": "HF", "confidence": 3, "rationale": "x" * (20 * 1024 * 1024)})
    response = _post_json(client, f"/api/v1/assignments/{assignment.pk}/label/", body)
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == settings.MAX_REQUEST_BODY_BYTES
    assert str(settings.MAX_REQUEST_BODY_BYTES) in response.json()["detail"]


def test_an_oversized_upload_answers_413(settings, db, tmp_path):
    from accounts.models import Role
    from tests import factories

    settings.MAX_UPLOAD_BYTES = 50_000
    client = APIClient()
    client.force_authenticate(factories.user(role=Role.RESEARCHER))
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"external_id": "a", "text": "x" * 100_000}) + "\n")
    with path.open("rb") as handle:
        response = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": "big"}, format="multipart")
    assert response.status_code == 413
    assert "50000" in response.json()["detail"]


# Bodies DRF parses whatever their declared type: application/*, */* and multipart/* were parsed
# without the middleware's checks (a NUL gave a 500 DataError, 5,000-deep nesting a RecursionError).
_WILDCARDS = ["application/*", "*/*", "application/x-json", "application/vnd.api+json; charset=utf-8"]


@pytest.mark.parametrize("content_type", _WILDCARDS)
def test_nul_in_round_institutions_is_refused_whatever_the_declared_type(api_world, content_type):
    client = client_for(api_world["coordinator"])
    client.raise_request_exception = False
    body = json.dumps(_round_body(api_world, institutions=["own\x00"]))
    response = client.generic("POST", "/api/v1/rounds/create/", body, content_type=content_type)
    assert response.status_code in (400, 415), response.content[:200]
    if response.status_code == 400:
        assert "Null characters" in response.json()["institutions"][0]


@pytest.mark.parametrize("content_type", _WILDCARDS + ["application/json"])
def test_deep_nesting_is_refused_naming_the_key_whatever_the_declared_type(api_world, content_type):
    assignment = own_assignment(api_world)
    client = client_for(api_world["raters"][0])
    client.raise_request_exception = False
    body = '{"confidence": 3, "concept_code": ' + _nested(5000) + "}"
    response = client.generic("POST", f"/api/v1/assignments/{assignment.pk}/label/", body, content_type=content_type)
    assert response.status_code in (400, 415), response.content[:200]
    if response.status_code == 400:
        assert "nested" in response.json()["concept_code"][0]
    assert not Label.objects.filter(assignment=assignment).exists()


def test_a_wildcard_content_type_answers_415(api_world):
    client = client_for(api_world["coordinator"])
    body = json.dumps(_round_body(api_world))
    for content_type in ("application/*", "*/*"):
        response = client.generic("POST", "/api/v1/rounds/create/", body, content_type=content_type)
        assert response.status_code == 415, content_type


def test_nul_in_a_multipart_body_is_refused_whatever_the_subtype(api_world):
    from django.test.client import BOUNDARY, encode_multipart

    client = client_for(api_world["coordinator"])
    client.raise_request_exception = False
    fields = {k: str(v) for k, v in _round_body(api_world).items() if k != "institutions"}
    body = encode_multipart(BOUNDARY, {**fields, "institutions": ["own\x00"]})
    response = client.generic(
        "POST", "/api/v1/rounds/create/", body, content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )
    assert response.status_code == 400, response.content[:200]
    assert "Null characters" in response.json()["institutions"][0]
    for content_type in (f"multipart/*; boundary={BOUNDARY}", f"*/*; boundary={BOUNDARY}"):
        response = client.generic("POST", "/api/v1/rounds/create/", body, content_type=content_type)
        assert response.status_code == 415, (content_type, response.content[:200])


def test_rubric_texts_are_limited_naming_the_field(api_world, settings):
    """Rubric descriptions, concept descriptions and guidelines had no limit (any size up to the body's)."""
    client = client_for(api_world["coordinator"])
    concept = {"code": "HF", "name": "Heart failure"}
    cases = {
        "description": {"name": "r1", "description": "d" * (settings.MAX_TEXT_CHARS + 1), "concepts": [concept]},
        "guidelines": {"name": "r2", "guidelines": "g" * (settings.MAX_GUIDELINES_CHARS + 1), "concepts": [concept]},
        "concepts": {"name": "r3", "concepts": [{**concept, "description": "c" * (settings.MAX_TEXT_CHARS + 1)}]},
    }
    for field, body in cases.items():
        response = client.post("/api/v1/rubrics/create/", body, format="json")
        assert response.status_code == 400, (field, response.content[:200])
        assert field in response.json()
    ok = client.post(
        "/api/v1/rubrics/create/", {"name": "r4", "description": "short", "concepts": [concept]}, format="json"
    )
    assert ok.status_code == 201, ok.content[:300]


def test_an_import_description_is_limited(settings, db):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.models import Role
    from tests import factories

    client = APIClient()
    client.force_authenticate(factories.user(role=Role.RESEARCHER))
    file = SimpleUploadedFile("notes.jsonl", b'{"external_id": "a", "text": "x"}\n')
    body = {"file": file, "name": "n", "description": "d" * (settings.MAX_TEXT_CHARS + 1)}
    response = client.post("/api/v1/jobs/import-corpus/", body, format="multipart")
    assert response.status_code == 400 and "description" in response.json()
