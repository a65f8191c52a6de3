"""Every read endpoint, for every role, from the data owner's institution and from another one."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from annotation.models import Assignment, Round, Rubric, RubricVersion
from features.models import ActivationSet
from inference.models import Job
from tests import factories

pytestmark = pytest.mark.django_db
ROLES = [Role.PHYSICIAN, Role.SENIOR, Role.COORDINATOR, Role.RESEARCHER, Role.ADMIN]


@pytest.fixture
def world(postgres):
    """Institution A owns a private corpus, an SAE trained on it, a round and a job; B owns nothing."""
    own, other = factories.institution("own"), factories.institution("other")
    private = factories.corpus(name="private-A", institution_obj=own, n_snippets=2)
    shared = factories.corpus(name="shared", n_snippets=1)
    sae = factories.sae()
    ActivationSet.objects.create(host_model=sae.hook_point.host_model, hook_point=sae.hook_point, corpus=private,
                                 artifact_uri="/x")
    sae.activation_set = ActivationSet.objects.get()
    sae.save()
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    rater = factories.user(role=Role.PHYSICIAN, institution_obj=own, username="rater-a")
    version = RubricVersion.objects.create(rubric=Rubric.objects.create(name="rubric"), version=1)
    round_ = Round.objects.create(name="cal", kind="calibration", sae=sae, rubric_version=version,
                                  coordinator=coordinator)
    round_.institutions.add(own)
    Assignment.objects.create(round=round_, latent=sae.latents.first(), rater=rater, position=0)
    runner = factories.user(role=Role.RESEARCHER, institution_obj=own)
    Job.objects.create(kind=Job.Kind.IMPORT_CORPUS, created_by=runner)
    return {"own": own, "other": other, "private": private, "shared": shared, "rater": rater}


def _client(world, role, where):
    if role == Role.PHYSICIAN and where == "own":
        user = world["rater"]  # the physician who holds the assignment
    else:
        user = factories.user(role=role, institution_obj=world[where])
    client = APIClient()
    client.force_authenticate(user)
    return client


def _count(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:200])
    return response.json()["count"]


# (endpoint, {(role, where): expected count}); missing keys default to the "default" entry.
def _expected(role, where, *, own_sees, admin_sees, other_sees):
    if role == Role.ADMIN:
        return admin_sees
    return own_sees if where == "own" else other_sees


@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize("role", ROLES)
def test_read_endpoints_show_only_what_the_role_and_institution_may_see(world, role, where):
    client = _client(world, role, where)
    is_own = where == "own"
    assert _count(client, "/api/v1/institutions/") == 2
    # Private corpus of A: its members and admins only; the shared corpus: everyone.
    assert _count(client, "/api/v1/corpora/") == _expected(role, where, own_sees=2, admin_sees=2, other_sees=1)
    assert _count(client, "/api/v1/snippets/") == _expected(role, where, own_sees=3, admin_sees=3, other_sees=1)
    # An SAE trained on the private corpus hides with it, and so do its latents.
    assert _count(client, "/api/v1/saes/") == _expected(role, where, own_sees=1, admin_sees=1, other_sees=0)
    assert _count(client, "/api/v1/latents/") == _expected(role, where, own_sees=4, admin_sees=4, other_sees=0)
    assert _count(client, "/api/v1/host-models/") == 1
    assert _count(client, "/api/v1/hook-points/") == 1
    # Rounds: raters see rounds they label in, coordinators their institution's, researchers and admins all.
    rounds_expected = {
        Role.PHYSICIAN: int(is_own), Role.SENIOR: 0, Role.COORDINATOR: int(is_own), Role.RESEARCHER: 1,
        Role.ADMIN: 1,
    }[role]
    assert _count(client, "/api/v1/rounds/") == rounds_expected
    # Assignments: only one's own, ever.
    assert _count(client, "/api/v1/assignments/") == int(role == Role.PHYSICIAN and is_own)
    # Jobs: researchers see their institution's, admins all, others only their own (none here).
    jobs_expected = {Role.RESEARCHER: int(is_own), Role.ADMIN: 1}.get(role, 0)
    assert _count(client, "/api/v1/jobs/") == jobs_expected


def test_private_corpus_detail_is_not_found_from_another_institution(world):
    client = _client(world, Role.RESEARCHER, "other")
    assert client.get(f"/api/v1/corpora/{world['private'].pk}/").status_code == 404
    assert client.get(f"/api/v1/corpora/{world['shared'].pk}/").status_code == 200


def test_anonymous_callers_are_refused(world):
    client = APIClient()
    for url in ["/api/v1/corpora/", "/api/v1/latents/", "/api/v1/rounds/", "/api/v1/jobs/", "/api/v1/assignments/"]:
        assert client.get(url).status_code in (401, 403)


def test_labellers_never_see_corpus_tags_or_tag_statistics(world):
    client = _client(world, Role.PHYSICIAN, "own")
    snippet = client.get("/api/v1/snippets/").json()["results"][0]
    assert "concept_tags" not in snippet
    latent = client.get("/api/v1/latents/").json()["results"][0]
    assert "best_tag" not in latent and "status" not in latent
    researcher = _client(world, Role.RESEARCHER, "own")
    assert "best_tag" in researcher.get("/api/v1/latents/").json()["results"][0]


def test_writes_need_the_right_role(world, tmp_path):
    client = _client(world, Role.PHYSICIAN, "own")
    upload = tmp_path / "c.jsonl"
    upload.write_text('{"external_id": "a", "text": "x"}\n')
    with upload.open("rb") as handle:
        response = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": "n"}, format="multipart")
    assert response.status_code == 403
