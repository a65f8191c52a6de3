"""Adjudication, the latent browser and exports, for every role × institution."""

from __future__ import annotations

import csv
import io

import pytest

from accounts.models import Role
from annotation.models import Adjudication, Label
from features.models import Latent
from tests.annotation.conftest import ROLES, WHERE, actor, client_for

pytestmark = pytest.mark.django_db
RATIONALE = "Both readings appear but the peak is always on renal terms."


def _make_ambiguous(world) -> Latent:
    latent = world["sae"].latents.get(index=0)
    Latent.objects.filter(pk=latent.pk).update(status=Latent.Status.AMBIGUOUS)
    return latent


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("role", ROLES)
def test_adjudication_is_for_seniors_who_may_see_the_sae(api_world, role, where):
    latent = _make_ambiguous(api_world)
    client = client_for(actor(api_world, role, where))
    may_adjudicate = role in (Role.SENIOR, Role.ADMIN)
    sees_sae = where == "own" or role == Role.ADMIN
    queue = client.get("/api/v1/adjudication-queue/")
    assert queue.status_code == (200 if may_adjudicate else 403)
    if may_adjudicate:
        assert [row["id"] for row in queue.json()["results"]] == ([latent.pk] if sees_sae else [])
    response = client.post(
        "/api/v1/adjudications/create/",
        {"latent": latent.pk, "concept_code": "AKI", "rationale": RATIONALE},
        format="json",
    )
    expected = (201 if sees_sae else 404) if may_adjudicate else 403
    assert response.status_code == expected
    assert Adjudication.objects.exists() == (expected == 201)
    if expected == 201:
        latent.refresh_from_db()
        assert latent.status == Latent.Status.ADJUDICATED
        again = client.post(
            "/api/v1/adjudications/create/",
            {"latent": latent.pk, "concept_code": "AKI", "rationale": RATIONALE},
            format="json",
        )
        assert again.status_code == 409


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("role", ROLES)
def test_latent_browser_is_for_label_readers_who_may_see_the_sae(api_world, role, where):
    client = client_for(actor(api_world, role, where))
    reader = role in (Role.RESEARCHER, Role.COORDINATOR, Role.ADMIN)
    sees_sae = where == "own" or role == Role.ADMIN
    response = client.get("/api/v1/labelled-latents/?sort=entropy")
    assert response.status_code == (200 if reader else 403)
    latent = api_world["sae"].latents.get(index=1)
    detail = client.get(f"/api/v1/labelled-latents/{latent.pk}/")
    assert detail.status_code == ((200 if sees_sae else 404) if reader else 403)
    if reader and sees_sae:
        assert response.json()["count"] == 4
        body = detail.json()
        assert body["consensus"]["map_concept"] == "HF" and body["labels"]
        assert all(row["pseudonym"].startswith("R-") for row in body["labels"])
        assert "rater-own" not in detail.content.decode()


def test_latent_browser_search_and_sorts(api_world):
    client = client_for(api_world["coordinator"])
    found = client.get("/api/v1/labelled-latents/?q=heart").json()["results"]
    assert {row["index"] for row in found} == {1, 3}
    assert {row["index"] for row in client.get("/api/v1/labelled-latents/?q=AKI").json()["results"]} == {0, 2}
    assert [row["index"] for row in client.get("/api/v1/labelled-latents/?q=2").json()["results"]] == [2]
    by_density = [row["index"] for row in client.get("/api/v1/labelled-latents/?sort=density").json()["results"]]
    assert by_density == [3, 2, 1, 0]
    for sort in ("agreement", "-agreement", "entropy", "-entropy", "detection", "-detection", "nonsense"):
        assert client.get(f"/api/v1/labelled-latents/?sort={sort}").status_code == 200


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("role", ROLES)
def test_exports_are_for_exporters_and_hold_only_visible_labels(api_world, role, where):
    client = client_for(actor(api_world, role, where))
    exporter = role in (Role.RESEARCHER, Role.COORDINATOR, Role.ADMIN)
    sees = where == "own" or role == Role.ADMIN
    response = client.get(f"/api/v1/exports/labels/?sae={api_world['sae'].pk}&format=csv")
    # An SAE or round the exporter may not see answers like one that does not exist (400, "unknown").
    assert response.status_code == ((200 if sees else 400) if exporter else 403)
    if exporter and sees:
        rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert len(rows) == Label.objects.filter(assignment__round=api_world["revealed"]).count()
    response = client.get(f"/api/v1/exports/latents/?round={api_world['revealed'].pk}&format=jsonl")
    assert response.status_code == ((200 if sees else 400) if exporter else 403)
