"""Request-level tests of the coordination fixes of issue 14 that have no browser behaviour: a follow-up
submitted twice, the alpha trend past an empty draft, deadlines in the API, the debug 404 page."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from accounts.models import Role
from annotation import selectors, services
from annotation.models import Assignment, Label, Round, RubricVersion
from tests import factories
from tests.annotation import worlds
from tests.annotation.conftest import client_for

pytestmark = pytest.mark.django_db


def _closed_calibration():
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own, username="coord-dee")
    raters = [factories.user(role=Role.PHYSICIAN, institution_obj=own) for _ in range(3)]
    sae = worlds.sae_with_examples(n_latents=3)
    version = worlds.rubric(by=coordinator)
    round_ = worlds.make_round(by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters)
    worlds.label_everything(round_, choose=lambda a: "HF")
    worlds.close_round(round=round_, by=coordinator)
    return round_, coordinator


def _management(prefix: str, n: int) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(n),
        f"{prefix}-INITIAL_FORMS": str(n),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def _follow_up_post(version: RubricVersion, *, token: str, action: str) -> dict:
    concepts = list(version.concepts.all())
    data = {
        "guidelines": "v2: name the finding at the peak.",
        "name": "",
        "token": token,
        "action": action,
        **_management("concepts", len(concepts)),
    }
    for i, concept in enumerate(concepts):
        data.update(
            {
                f"concepts-{i}-code": concept.code,
                f"concepts-{i}-name": concept.name,
                f"concepts-{i}-parent_code": concept.parent_code,
                f"concepts-{i}-description": concept.description,
                f"concepts-{i}-synonyms": ", ".join(concept.synonyms),
            }
        )
    return data


def test_follow_up_submitted_twice_makes_one_version_and_one_draft_and_keeps_synonyms(postgres):
    round_, coordinator = _closed_calibration()
    client = Client()
    client.force_login(coordinator)
    url = f"/rounds/{round_.pk}/follow-up/new/"
    page = client.get(url)
    token = page.context["form"].initial["token"]
    preview = client.post(url, _follow_up_post(round_.rubric_version, token=token, action="preview"))
    assert preview.status_code == 200 and b"What the new version changes" in preview.content
    assert not Round.objects.filter(parent=round_).exists()  # a preview saves nothing
    first = client.post(url, _follow_up_post(round_.rubric_version, token=token, action="save"))
    second = client.post(url, _follow_up_post(round_.rubric_version, token=token, action="save"))
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert Round.objects.filter(parent=round_).count() == 1
    assert RubricVersion.objects.filter(rubric=round_.rubric_version.rubric).count() == 2
    follow_up = Round.objects.get(parent=round_)
    assert follow_up.rubric_version.concepts.get(code="HF").synonyms == ["CHF"]
    assert follow_up.rubric_version.concepts.get(code="HF").description == "Reduced or preserved ejection fraction"


def test_alpha_trend_follows_the_labelled_follow_up_not_a_newer_empty_draft(postgres):
    round_, coordinator = _closed_calibration()
    labelled = services.round_follow_up_create(parent=round_, guidelines="v2", by=coordinator)
    services.round_open(round=labelled, by=coordinator)
    worlds.label_everything(labelled, choose=lambda a: "HF")
    worlds.close_round(round=labelled, by=coordinator)
    services.round_follow_up_create(parent=round_, guidelines="v3", by=coordinator)  # left empty, newer
    trend = selectors.round_alpha_trend(round=round_)
    assert [point.round_id for point in trend] == [round_.pk, labelled.pk]


def test_draft_round_is_deleted_with_its_unused_rubric_version(postgres):
    round_, coordinator = _closed_calibration()
    draft = services.round_follow_up_create(parent=round_, guidelines="v2", by=coordinator)
    client = Client()
    client.force_login(coordinator)
    response = client.post(f"/rounds/{draft.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/rounds/"
    assert not Round.objects.filter(pk=draft.pk).exists()
    assert list(round_.rubric_version.rubric.versions.values_list("version", flat=True)) == [1]
    # An open or closed round is never deleted.
    assert client.post(f"/rounds/{round_.pk}/delete/").status_code == 302
    assert Round.objects.filter(pk=round_.pk).exists()


def test_labels_after_the_deadline_are_refused_by_the_api_with_a_clear_message(postgres):
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    rater = factories.user(role=Role.PHYSICIAN, institution_obj=own)
    sae = worlds.sae_with_examples(n_latents=2)
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=worlds.rubric(by=coordinator),
        institutions=[own],
        raters_list=[rater],
        overlap=1,
    )
    assignment = Assignment.objects.filter(round=round_).first()
    label = {"concept_code": "HF", "confidence": 4, "rationale": "Every top example peaks on failure after heart."}
    Round.objects.filter(pk=round_.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    response = client_for(rater).post(f"/api/v1/assignments/{assignment.pk}/label/", label, format="json")
    assert response.status_code == 409
    assert "deadline" in json.dumps(response.json()).lower()
    assert not Label.objects.exists()
    # The coordinator extends it; the same label is then accepted.
    services.round_deadline_set(round=round_, deadline=timezone.now() + timedelta(days=1), by=coordinator)
    response = client_for(rater).post(f"/api/v1/assignments/{assignment.pk}/label/", label, format="json")
    assert response.status_code in (200, 201)


@override_settings(DEBUG=True)
def test_embedded_server_shows_concords_404_page_not_djangos_debug_page(postgres, settings):
    from config.management.commands.run_embedded import FRIENDLY_NOT_FOUND

    settings.MIDDLEWARE = [*settings.MIDDLEWARE, FRIENDLY_NOT_FOUND]
    user = factories.user(role=Role.PHYSICIAN, institution_obj=factories.institution("own"))
    client = Client()
    client.force_login(user)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body and 'href="/queue/"' in body
    assert "URLconf" not in body and "technical_404" not in body


def test_demo_rubric_gives_every_concept_a_description_and_keeps_synonyms(postgres):
    from config.demo import _rubric

    version = _rubric(by=factories.user(role=Role.COORDINATOR, institution_obj=factories.institution("own")))
    concepts = list(version.concepts.all())
    # groups + concepts + reserved codes + the protected group and its four attributes
    assert len(concepts) == 28 + 5
    assert {c.code for c in concepts if c.protected} == {
        "DEMOGRAPHICS",
        "RACE_ETHNICITY",
        "SEX_GENDER",
        "INSURANCE",
        "AGE_BAND",
    }
    assert [c.code for c in concepts if not c.description.strip()] == []
    assert "HFpEF" in version.concepts.get(code="HF").synonyms


def test_500_page_renders_without_a_request_and_leads_home():
    from django.template.loader import render_to_string

    body = render_to_string("500.html")  # Django's server_error renders it with no context at all
    assert "Something went wrong" in body and 'href="/"' in body


def test_closing_without_the_dialog_asks_on_a_page_first(postgres):
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    rater = factories.user(role=Role.PHYSICIAN, institution_obj=own)
    round_ = worlds.make_round(
        by=coordinator,
        sae=worlds.sae_with_examples(n_latents=2),
        version=worlds.rubric(by=coordinator),
        institutions=[own],
        raters_list=[rater],
        overlap=1,
        min_repeats=0,
    )
    client = Client()
    client.force_login(coordinator)
    asked = client.post(f"/rounds/{round_.pk}/close/")
    assert asked.status_code == 200 and b"0 / 2" in asked.content and b"cannot be undone" in asked.content
    assert Round.objects.get(pk=round_.pk).status == Round.Status.OPEN
    closed = client.post(f"/rounds/{round_.pk}/close/", {"confirmed": "yes"})
    assert closed.status_code == 302 and Round.objects.get(pk=round_.pk).status == Round.Status.CLOSED
