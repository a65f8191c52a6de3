"""The clinician role (issue 12, "a page for clinicians, physicians, researchers"): explains notes, reads only
what revealed rounds concluded, is never a rater, and has no queue, rounds, jobs or exports."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from annotation import services
from annotation.models import Assignment, Round
from annotation.services.errors import InvalidInput
from features.models import Latent
from tests import factories
from tests.clinical.test_explain import NOTE, _explain_json, _fired_by_token, _label

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinician(tiny_world):
    return factories.user(role=Role.CLINICIAN, institution_obj=tiny_world.home, username="clin-home")


def _row(view: dict, index: int) -> dict:
    return next(x for t in view["tokens"] for x in t["latents"] if x["index"] == index)


def test_a_clinician_explains_a_note_on_the_page_and_the_api_and_not_with_a_foreign_sae(
    tiny_world, people, clinician, client
):
    client.force_login(clinician)
    page = client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE})
    assert page.status_code == 200 and "not a clinical finding" in page.content.decode()
    api = APIClient()
    api.force_authenticate(clinician)
    response = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json")
    assert response.status_code == 200 and [t["text"] for t in response.json()["tokens"]] == NOTE.split()
    foreign = factories.user(role=Role.CLINICIAN, institution_obj=factories.institution("elsewhere"))
    api.force_authenticate(foreign)
    assert api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").status_code == 404


def test_a_clinician_reads_the_consensus_of_revealed_rounds_only(tiny_world, people, clinician):
    chest = _fired_by_token(_explain_json(tiny_world.sae))[2][0]
    _, closed = _label(
        tiny_world, people["coordinator"], plan={chest: {"code": "MI", "top": 0.9, "routing": "consensus"}}
    )
    latent = Latent.objects.get(sae=tiny_world.sae, index=chest)
    Assignment.objects.create(round=closed, latent=latent, rater=people["physician"], position=0)
    api = APIClient()

    def view(user) -> dict:
        api.force_authenticate(user)
        return api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").json()

    # closed, not revealed: the round's watchers read its consensus, a clinician does not
    assert _row(view(people["researcher"]), chest)["label"] == "MI"
    hidden = view(clinician)
    assert (_row(hidden, chest)["label"], _row(hidden, chest)["uncertainty"]) == (None, "unlabelled")
    assert "MI" not in {concept["code"] for concept in hidden["concepts"]}
    Round.objects.filter(pk=closed.pk).update(status="revealed")
    shown = view(clinician)
    assert _row(shown, chest)["label"] == "MI" and "MI" in {concept["code"] for concept in shown["concepts"]}


def test_a_clinician_is_never_a_rater_and_has_no_queue_rounds_jobs_or_exports(tiny_world, people, clinician, client):
    from tests.annotation import worlds

    version = worlds.rubric(by=people["coordinator"])
    sae = worlds.sae_with_examples(n_latents=3, institution=tiny_world.home)
    with pytest.raises(InvalidInput):
        services.round_create(
            name="with a clinician",
            kind="calibration",
            sae=sae,
            rubric_version=version,
            institutions=[tiny_world.home],
            overlap=1,
            raters=[clinician],
            selection_rule="random",
            n_latents=2,
            by=people["coordinator"],
        )
    client.force_login(clinician)
    home = client.get("/").content.decode()
    assert 'href="/explain/"' in home and 'id="clinician-home"' in home
    for hidden in ("/queue/", "/jobs/", "/export/", "/drift/", "/protected/", "/rubrics/", "/adjudication/"):
        assert f'href="{hidden}"' not in home, hidden
    assert client.get("/queue/").status_code == 403
    assert client.get("/jobs/").status_code == 404
    assert client.get("/export/").status_code == 403
    assert client.get("/drift/").status_code == 403
    assert client.get("/rounds/")["Location"] == "/explain/"
    api = APIClient()
    api.force_authenticate(clinician)
    assert api.get("/api/v1/jobs/").json()["count"] == 0
    assert api.get("/api/v1/rounds/").json()["count"] == 0
    assert api.get("/api/v1/assignments/").json()["count"] == 0
    assert api.get("/api/v1/exports/labels/").status_code == 403
    assert api.get("/api/v1/exports/latents/").status_code == 403
