"""The read matrix: every read endpoint and page (enumerated from the URL conf) × every role × own / other
institution, plus each private id swapped for an id that was never created.

A leak is any of: another institution's private text (PRIVATEA) in a response to a non-admin of `other`;
a foreign id that answers differently from an absent one (a hint that it exists); someone else's label
that the blind rule does not allow (tests/accounts/access_world.label_visible_by_spec); a server error.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from annotation.models import Assignment, Round, Rubric, RubricVersion
from features.models import ActivationSet
from inference.models import Job
from tests import factories

from .access_world import (
    PRIVATE,
    ROLES,
    WHERE,
    api_client,
    body_text,
    build_world,
    label_leaks,
    record,
    same_answer,
    send,
)
from .matrix_cases import EXEMPT, READ_CASES, WRITE_CASES, ids, personal_stranger, url_patterns, variants

pytestmark = pytest.mark.django_db


def test_every_url_has_a_matrix_entry():
    """A new endpoint fails here until it joins READ_CASES / WRITE_CASES (or EXEMPT, with a reason)."""
    read = {case.name for case in READ_CASES}
    write = {case.name for case in WRITE_CASES}
    missing, wrong = [], []
    names = set()
    for name, route, callback in url_patterns():
        names.add(name)
        if name in EXEMPT:
            continue
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if view_class is not None:
            if hasattr(view_class, "get") and name not in read:
                missing.append(f"{name} ({route}): GET without a READ_CASES entry")
            if hasattr(view_class, "post") and name not in write:
                missing.append(f"{name} ({route}): POST without a WRITE_CASES entry")
        elif name not in read and name not in write:
            missing.append(f"{name} ({route}): a page without a READ_CASES or WRITE_CASES entry")
    wrong = sorted((read | write | set(EXEMPT)) - names)
    assert not missing, "add these to tests/accounts/matrix_cases.py:\n" + "\n".join(missing)
    assert not wrong, f"matrix entries for names the URL conf no longer has: {wrong}"


@pytest.mark.slow
def test_read_matrix_leaks_nothing(postgres, no_throttles):
    world = build_world()
    requests, leaks, private_seen_by_own, labels_seen = 0, [], 0, 0
    cache: dict = {}
    for role in ROLES:
        for where in WHERE:
            user = world.actor(role, where)
            client = api_client(user)
            client.raise_request_exception = False
            outsider = where == "other" and role != Role.ADMIN
            values = ids(world, user)
            for case in READ_CASES:
                answers = {}
                for variant, filled in variants(case, values):
                    response = send(client, case, filled)
                    requests += 1
                    answers[variant] = (response, filled)
                    text = body_text(response)
                    where_ = f"{role}/{where} GET {case.template} [{variant}] → {response.status_code}"
                    if response.status_code >= 500:
                        leaks.append(f"{where_}: server error")
                    if outsider and PRIVATE in text:
                        leaks.append(f"{where_}: shows own's private data")
                    if where == "own" and PRIVATE in text:
                        private_seen_by_own += 1
                    if marks := label_leaks(user, text, cache):
                        leaks.append(f"{where_}: shows labels {marks[:3]}")
                    labels_seen += "SECRET-" in text and not label_leaks(user, text, cache)
                if outsider or personal_stranger(world, case, user):
                    foreign, foreign_values = answers["foreign"]
                    for variant, (absent, absent_values) in answers.items():
                        if variant == "foreign":
                            continue
                        key = variant.split(":", 1)[1]
                        if not same_answer(foreign, absent, foreign_values[key], absent_values[key]):
                            leaks.append(
                                f"{role}/{where} GET {case.template}: own's {key} answers "
                                f"{foreign.status_code}, an absent one {absent.status_code}"
                            )
    record(
        "read",
        {
            "requests": requests,
            "leaks": len(leaks),
            "cases": len(READ_CASES),
            "actors": len(ROLES) * len(WHERE),
            "private_seen_by_own": private_seen_by_own,
            "responses_with_allowed_labels": labels_seen,
        },
    )
    assert not leaks, "\n".join(leaks[:40])
    # The probe sees what it looks for: own's people do read own's data and labels they may read.
    assert private_seen_by_own > 50 and labels_seen > 10


# -- the original role × institution list counts, kept as a readable summary ---------------------------------


@pytest.fixture
def world(postgres):
    """Institution A owns a private corpus, an SAE trained on it, a round and a job; B owns nothing."""
    own, other = factories.institution("own"), factories.institution("other")
    private = factories.corpus(name="private-A", institution_obj=own, n_snippets=2)
    shared = factories.corpus(name="shared", n_snippets=1)
    sae = factories.sae()
    ActivationSet.objects.create(
        host_model=sae.hook_point.host_model, hook_point=sae.hook_point, corpus=private, artifact_uri="/x"
    )
    sae.activation_set = ActivationSet.objects.get()
    sae.save()
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    rater = factories.user(role=Role.PHYSICIAN, institution_obj=own, username="rater-a")
    version = RubricVersion.objects.create(rubric=Rubric.objects.create(name="rubric"), version=1)
    round_ = Round.objects.create(
        name="cal",
        kind="calibration",
        sae=sae,
        rubric_version=version,
        coordinator=coordinator,
        status=Round.Status.OPEN,
    )
    round_.institutions.add(own)
    Assignment.objects.create(round=round_, latent=sae.latents.first(), rater=rater, position=0)
    runner = factories.user(role=Role.RESEARCHER, institution_obj=own)
    Job.objects.create(kind=Job.Kind.IMPORT_CORPUS, created_by=runner)
    return {"own": own, "other": other, "private": private, "shared": shared, "rater": rater, "round": round_}


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
    # Rounds: raters see rounds they label in, coordinators their institution's, researchers those on SAEs
    # they may see (the round's SAE is private to A), admins all.
    rounds_expected = {
        Role.PHYSICIAN: int(is_own),
        Role.SENIOR: 0,
        Role.COORDINATOR: int(is_own),
        Role.RESEARCHER: int(is_own),
        Role.ADMIN: 1,
        Role.CLINICIAN: 0,
    }[role]
    assert _count(client, "/api/v1/rounds/") == rounds_expected
    # Assignments: only one's own, ever.
    assert _count(client, "/api/v1/assignments/") == int(role == Role.PHYSICIAN and is_own)
    # Jobs: researchers see their institution's, admins all, others only their own (none here).
    jobs_expected = {Role.RESEARCHER: int(is_own), Role.ADMIN: 1}.get(role, 0)
    assert _count(client, "/api/v1/jobs/") == jobs_expected


def test_raters_do_not_see_draft_rounds(world):
    Round.objects.filter(pk=world["round"].pk).update(status=Round.Status.DRAFT)
    client = _client(world, Role.PHYSICIAN, "own")
    assert _count(client, "/api/v1/rounds/") == 0
    assert client.get(f"/api/v1/rounds/{world['round'].pk}/").status_code == 404


def test_private_corpus_detail_is_not_found_from_another_institution(world):
    client = _client(world, Role.RESEARCHER, "other")
    assert client.get(f"/api/v1/corpora/{world['private'].pk}/").status_code == 404
    assert client.get(f"/api/v1/corpora/{world['shared'].pk}/").status_code == 200


def test_anonymous_callers_are_refused(world):
    client = APIClient()
    for url in ["/api/v1/corpora/", "/api/v1/latents/", "/api/v1/rounds/", "/api/v1/jobs/", "/api/v1/assignments/"]:
        assert client.get(url).status_code in (401, 403)


@pytest.mark.parametrize("role", [Role.PHYSICIAN, Role.CLINICIAN])
def test_labellers_never_see_corpus_tags_or_tag_statistics(world, role):
    client = _client(world, role, "own")
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
