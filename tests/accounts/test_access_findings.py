"""One test per access finding of issue 10 (High 1 and 2, and the /rounds/ links of finding 8), each failing on
the code before the fix: the scenario as the attacker ran it, then what must happen instead."""

from __future__ import annotations

import re
from collections import deque

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from annotation.models import Label, Round
from features.models import Corpus, Latent, LatentExample
from features.services import corpus_import
from inference.models import Job
from tests import factories

from .access_world import ABSENT_CODE, ABSENT_ID, PRIVATE, api_client, body_text, build_world, label_marks

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(postgres):
    return build_world()


def _marks_of_round(text: str, round_: Round) -> set:
    return {mark for mark in label_marks(text) if mark[1] == round_.pk}


# -- High 1: blind means blind --------------------------------------------------------------------------------


def test_a_senior_still_labelling_a_latent_cannot_open_its_adjudication_page(world):
    """dr_ash: a senior of an open blind round who has not labelled the latent yet asked /adjudication/<id>/
    and read the others' labels, rationales and pseudonyms."""
    senior = world.raters[2]
    Label.objects.filter(
        assignment__round=world.open, assignment__rater=senior, assignment__latent=world.latent
    ).delete()
    client = api_client(senior)
    response = client.get(f"/adjudication/{world.latent.pk}/")
    assert response.status_code == 404 and not label_marks(body_text(response))
    # Even once the latent is routed to adjudication, not while the senior still labels it in an open round.
    Latent.objects.filter(pk=world.latent.pk).update(status=Latent.Status.AMBIGUOUS)
    response = client.get(f"/adjudication/{world.latent.pk}/")
    assert response.status_code == 404 and not label_marks(body_text(response))
    assert (
        client.post(
            "/api/v1/adjudications/create/",
            {"latent": world.latent.pk, "concept_code": "HF", "rationale": "x" * 30},
            format="json",
        ).status_code
        == 409
    )


def test_the_adjudication_page_is_only_for_latents_in_the_queue_and_shows_no_open_round_label(world):
    senior = world.actor(Role.SENIOR, "own")  # labels nothing
    client = api_client(senior)
    assert client.get(f"/adjudication/{world.latent.pk}/").status_code == 404  # not ambiguous: not in the queue
    response = client.get(f"/adjudication/{world.ambiguous.pk}/")
    assert response.status_code == 200
    text = body_text(response)
    assert _marks_of_round(text, world.revealed)  # the closed (revealed) round's labels: what they decide on
    assert not _marks_of_round(text, world.open)  # the open round's: never


def test_latent_history_leaves_out_rounds_that_are_not_closed(world):
    """latent_history returned the labels of every round whatever its status."""
    for role in (Role.RESEARCHER, Role.COORDINATOR, Role.ADMIN):
        response = api_client(world.actor(role, "own")).get(f"/api/v1/labelled-latents/{world.latent.pk}/")
        assert response.status_code == 200
        rounds = {row["round_id"] for row in response.json()["labels"]}
        assert rounds == {world.revealed.pk}, role
        page = api_client(world.actor(role, "own")).get(f"/labelled-latents/{world.latent.pk}/")
        assert not _marks_of_round(body_text(page), world.open) and _marks_of_round(body_text(page), world.revealed)


def test_watchers_see_progress_not_content_of_an_open_round(world):
    coordinator = api_client(world.actor(Role.COORDINATOR, "own"))
    assert coordinator.get(f"/api/v1/labels/?round={world.open.pk}").status_code == 403
    progress = coordinator.get(f"/api/v1/rounds/{world.open.pk}/progress/")
    assert progress.status_code == 200 and progress.json()["done"] == progress.json()["assigned"] > 0
    page = body_text(coordinator.get(f"/rounds/{world.open.pk}/"))
    assert 'id="progress-raters"' in page and not label_marks(page)
    # Searching the free text of an open round's label finds nothing.
    open_label = Label.objects.filter(assignment__round=world.open).first()
    found = coordinator.get(f"/api/v1/labelled-latents/?q={open_label.free_text}").json()
    assert found["count"] == 0


# -- High 2: a foreign id answers like an absent one, for reads and writes ----------------------------------------


def _same(first, second) -> bool:
    normal = [re.sub(r"\b\d+\b", "<ID>", body_text(response)) for response in (first, second)]
    return first.status_code == second.status_code and normal[0] == normal[1]


def test_a_researcher_cannot_train_on_another_institutions_activation_set(world):
    client = api_client(world.actor(Role.RESEARCHER, "other"))
    body = {"arch": "topk", "width": 16, "k": 2, "steps": 10}
    foreign = client.post("/api/v1/jobs/train-sae/", {**body, "activation_set": world.activation_set.pk}, format="json")
    absent = client.post("/api/v1/jobs/train-sae/", {**body, "activation_set": ABSENT_ID}, format="json")
    assert foreign.status_code == 400 and _same(foreign, absent)
    assert not Job.objects.filter(kind=Job.Kind.TRAIN_SAE).exclude(pk=world.job.pk).exists()


def test_a_researcher_cannot_mine_another_institutions_sae(world):
    client = api_client(world.actor(Role.RESEARCHER, "other"))
    examples = LatentExample.objects.filter(latent__sae=world.sae).count()
    foreign = client.post("/api/v1/jobs/mine-latents/", {"sae": world.sae.pk}, format="json")
    absent = client.post("/api/v1/jobs/mine-latents/", {"sae": ABSENT_ID}, format="json")
    assert foreign.status_code == 400 and _same(foreign, absent)
    assert not Job.objects.filter(kind=Job.Kind.MINE_LATENTS).exists()
    assert LatentExample.objects.filter(latent__sae=world.sae).count() == examples


def test_a_researcher_cannot_import_into_another_institutions_private_list(world):
    client = api_client(world.actor(Role.RESEARCHER, "other"))

    def upload(code):
        file = SimpleUploadedFile("notes.jsonl", b'{"external_id": "a", "text": "x"}\n')
        return client.post(
            "/api/v1/jobs/import-corpus/", {"file": file, "name": "notes", "institution": code}, format="multipart"
        )

    foreign, absent = upload(world.own.code), upload(ABSENT_CODE)
    assert foreign.status_code == 400 and foreign.json() == {
        "institution": [msg.replace(ABSENT_CODE, world.own.code) for msg in absent.json()["institution"]]
    }
    assert not Job.objects.filter(kind=Job.Kind.IMPORT_CORPUS).exists()
    assert upload(world.other.code).status_code == 202  # into their own institution: yes


def test_researchers_do_not_list_rounds_on_saes_they_may_not_see(world):
    client = api_client(world.actor(Role.RESEARCHER, "other"))
    response = client.get("/api/v1/rounds/")
    assert response.json()["count"] == 0 and PRIVATE not in body_text(response)
    assert client.get(f"/api/v1/rounds/{world.revealed.pk}/").status_code == 404
    own = api_client(world.actor(Role.RESEARCHER, "own")).get("/api/v1/rounds/").json()
    assert own["count"] == Round.objects.count()


def test_a_corpus_name_clash_never_reveals_another_institutions_private_corpus(world, tmp_path):
    """Names are unique per institution: another institution's private name is free, so trying it says nothing."""
    path = tmp_path / "notes.jsonl"
    path.write_text('{"external_id": "a", "text": "x"}\n')
    private_name = world.corpus.name
    theirs = corpus_import(path=path, name=private_name, institution=world.other)
    assert theirs.institution == world.other and Corpus.objects.filter(name=private_name).count() == 2
    shared = corpus_import(path=path, name=private_name, institution=None)
    assert shared.institution is None
    # A clash with a corpus one can see is still refused, with the same words for every such clash.
    from features.corpus_files import CorpusFormatError

    with pytest.raises(CorpusFormatError, match="already exists"):
        corpus_import(path=path, name=private_name, institution=world.other)


def test_raters_from_another_institution_are_unknown_pseudonyms(world):
    """A pseudonym of another institution's rater named them by username in the error."""
    client = api_client(world.actor(Role.COORDINATOR, "other"))
    body = {
        "name": "probe",
        "kind": "calibration",
        "sae": world.shared_sae.pk,
        "rubric_version": world.revealed.rubric_version_id,
        "institutions": [world.other.code],
        "selection_rule": "hand",
        "latent_indices": [0],
        "overlap": 1,
    }
    foreign = client.post(
        "/api/v1/rounds/create/", {**body, "raters": [world.raters[1].profile.pseudonym]}, format="json"
    )
    absent = client.post("/api/v1/rounds/create/", {**body, "raters": ["R-0000000000"]}, format="json")
    assert foreign.status_code == 400 and foreign.json() == absent.json()
    assert world.raters[1].username not in body_text(foreign)


def test_exports_treat_a_foreign_round_as_unknown(world):
    client = api_client(world.actor(Role.RESEARCHER, "other"))
    foreign = client.get(f"/api/v1/exports/labels/?round={world.revealed.pk}&format=csv")
    absent = client.get(f"/api/v1/exports/labels/?round={ABSENT_ID}&format=csv")
    assert foreign.status_code == 400 and foreign.json() == absent.json()


def test_the_django_admin_lists_what_the_access_functions_give(world):
    admin = world.actor(Role.ADMIN, "own")
    client = api_client(admin)
    from django.contrib import admin as django_admin

    from accounts.admin import ConcordAdmin

    concord = [
        model for model, model_admin in django_admin.site._registry.items() if isinstance(model_admin, ConcordAdmin)
    ]
    assert len(concord) > 15
    for model in concord:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url
    labels = body_text(client.get("/admin/annotation/label/"))
    closed_label = Label.objects.filter(assignment__round=world.revealed).first()
    open_label = Label.objects.filter(assignment__round=world.open).first()
    assert f"/admin/annotation/label/{closed_label.pk}/change/" in labels
    assert f"/admin/annotation/label/{open_label.pk}/change/" not in labels
    assert client.get(f"/admin/annotation/label/{open_label.pk}/change/").status_code == 302  # not listed: gone
    staff = factories.user(role=Role.RESEARCHER, institution_obj=world.own)
    get_user_model().objects.filter(pk=staff.pk).update(is_staff=True)
    assert api_client(staff).get("/admin/annotation/label/").status_code == 403


# -- finding 8: no link a page shows answers 403 -----------------------------------------------------------------

SKIP = re.compile(r"^/(accounts/logout|admin|api/docs|api/schema|static)")


@pytest.mark.parametrize("where", ["own", "other"])
@pytest.mark.parametrize(
    "role", [Role.PHYSICIAN, Role.SENIOR, Role.COORDINATOR, Role.RESEARCHER, Role.ADMIN, Role.CLINICIAN]
)
def test_no_page_links_to_a_page_that_refuses_the_user(world, role, where):
    """The demo physician saw /rounds/ links that answered a bare 403 page. Crawl from the home page and
    from /rounds/: every link a user is shown must open for them."""
    user = world.actor(role, where)
    client = api_client(user)
    client.raise_request_exception = False
    queue, seen, refused = deque(["/", "/rounds/"]), set(), []
    while queue and len(seen) < 60:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url, follow=True)
        if response.status_code in (403, 404) or response.status_code >= 500:
            refused.append((url, response.status_code))
            continue
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        for link in re.findall(r'href="(/[^"#]*)"', body_text(response)):
            link = link.replace("&amp;", "&")
            if not SKIP.match(link) and link not in seen:
                queue.append(link)
    assert not refused, refused
