"""In Chromium: a senior adjudicates an ambiguous latent; a researcher exports every submitted label."""

from __future__ import annotations

import csv

import pytest

from accounts.models import Role
from annotation import services
from annotation.models import Adjudication, Label
from features.models import Latent
from tests import factories
from tests.annotation import e2e, worlds
from tests.annotation.conftest import ARTIFACTS, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def closed_world(postgres):
    world = e2e.blind_round_world()
    physician = world["physician"]
    for assignment in physician.assignments.filter(round=world["round"]).select_related("round"):
        services.label_submit(
            assignment=assignment,
            concept_code="RENAL",
            confidence=2,
            rationale="Renal words around the peak token, I think.",
            by=physician,
        )
    worlds.close_round(round=world["round"], by=world["coordinator"])
    return world


def test_senior_adjudicates_an_ambiguous_latent(closed_world, live_server, browser_page):
    latent = closed_world["sae"].latents.get(index=0)
    Latent.objects.filter(pk=latent.pk).update(status=Latent.Status.AMBIGUOUS)
    factories.user(role=Role.SENIOR, institution_obj=closed_world["own"], username="senior")
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "senior")
    page.goto(f"{base}/adjudication/")
    screenshot(page, "10-senior-queue")
    page.click(f"a[href='/adjudication/{latent.pk}/']")
    page.wait_for_selector("#adjudication-form")
    # The full distribution and every rationale sit beside the decision form, as text.
    assert page.get_by_text(e2e.RATIONALE_PAYLOAD).first.is_visible()
    assert page.locator("#posterior tr").count() >= 2
    e2e.assert_no_script_ran(page)
    page.select_option("#id_concept", label="AKI — Acute kidney injury")
    page.fill("#id_rationale", "The peaks sit on creatinine and rose: acute kidney injury.")
    screenshot(page, "11-senior-decision")
    page.click("#adjudicate")
    page.wait_for_url(f"{base}/adjudication/")
    assert "adjudicated as AKI" in page.content()
    screenshot(page, "12-senior-done")
    adjudication = Adjudication.objects.get(latent=latent)
    assert adjudication.concept.code == "AKI" and adjudication.overrode is not None
    assert Latent.objects.get(pk=latent.pk).status == Latent.Status.ADJUDICATED
    assert Label.objects.filter(assignment__latent=latent).count() == 3  # the distribution stays


def test_researcher_exports_every_submitted_label(closed_world, live_server, browser_page):
    factories.user(role=Role.RESEARCHER, institution_obj=closed_world["own"], username="researcher")
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "researcher")
    page.goto(f"{base}/export/")
    page.fill("#id_round", str(closed_world["round"].pk))
    page.select_option("#id_kind", "labels")
    page.select_option("#id_format", "csv")
    screenshot(page, "13-researcher-export")
    with page.expect_download() as download:
        page.click("#download")
    path = ARTIFACTS / "export-labels.csv"
    download.value.save_as(str(path))
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    submitted = Label.objects.filter(assignment__round=closed_world["round"])
    assert len(rows) == submitted.count() == 6
    assert {(int(row["latent_id"]), row["rater"], row["concept_code"]) for row in rows} == {
        (label.assignment.latent_id, label.assignment.rater.profile.pseudonym, label.concept.code)
        for label in submitted.select_related("assignment__rater__profile", "concept")
    }
    text = path.read_text()
    assert not any(name in text for name in ("dr-ada", "dr-ben", "dr-cai"))
    page.goto(f"{base}/labelled-latents/?sort=entropy")
    screenshot(page, "14-researcher-browser")
    page.click(f"a[href='/labelled-latents/{closed_world['sae'].latents.get(index=0).pk}/']")
    assert page.get_by_text(e2e.RATIONALE_PAYLOAD).first.is_visible()
    e2e.assert_no_script_ran(page)
    screenshot(page, "15-researcher-latent")
