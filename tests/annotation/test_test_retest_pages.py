"""Test–retest computes from the first repeat pair: stored per rater with an interval and the pairs it
rests on, pooled per round with a CI, and the dashboard says how many pairs each figure rests on."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from annotation import services
from annotation.models import AgreementReport, Assignment, RaterReliability
from tests.annotation import worlds

pytestmark = pytest.mark.django_db


def _closed_round(*, min_repeats: int, n_latents: int, repeat_same: bool = True):
    coordinator = worlds.coordinator()
    people = worlds.raters(per_institution={"a": 2, "b": 2})
    sae = worlds.sae_with_examples(n_latents=n_latents)
    round_ = services.round_create(
        name="retest",
        kind="calibration",
        sae=sae,
        rubric_version=worlds.rubric(),
        overlap=2,
        institutions=list({p.profile.institution for p in people}),
        selection_rule="hand",
        latent_indices=list(range(n_latents)),
        raters=people,
        seed=4,
        min_repeats=min_repeats,
        by=coordinator,
    )
    services.round_open(round=round_, by=coordinator)
    codes = ("HF", "AKI", "AF", "NEG")

    def choose(assignment):
        if assignment.is_repeat and not repeat_same and assignment.rater_id == people[0].pk:
            return "NEG" if assignment.latent.index % len(codes) != 3 else "HF"  # rater 0 changes their mind
        return codes[assignment.latent.index % len(codes)]

    worlds.label_everything(round_, choose=choose)
    worlds.close_round(round=round_, by=coordinator)
    return round_, people, coordinator


def _dashboard(round_, user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/rounds/{round_.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_one_pair_per_rater_gives_values_with_intervals_not_a_dash(postgres):
    round_, people, coordinator = _closed_round(min_repeats=1, n_latents=4)
    rows = RaterReliability.objects.of_round(round_.pk)
    assert rows.count() == 4
    for row in rows:
        assert row.test_retest_n_pairs == 1 and row.test_retest is not None, row.test_retest_reason
        assert row.test_retest_low < row.test_retest <= row.test_retest_high
    pooled = AgreementReport.objects.get(round=round_, metric="test_retest", level="pooled")
    assert pooled.n_pairable == 4 and pooled.value == pytest.approx(1.0) and pooled.ci_low < 0.9
    page = _dashboard(round_, coordinator)
    assert re.search(r"Round test–retest κ = 1\.00.*over 4 repeat pairs from 4 raters", page, re.S)
    table = page[page.index('id="reliability"') :]
    assert table.count("<td>1</td>") >= 4  # each rater's figure rests on one pair, and says so


def test_many_pairs_separate_a_consistent_rater_from_an_inconsistent_one(postgres):
    round_, people, coordinator = _closed_round(min_repeats=6, n_latents=12, repeat_same=False)
    assert Assignment.objects.filter(round=round_, is_repeat=True, rater=people[0]).count() == 6
    rows = {row.rater_id: row for row in RaterReliability.objects.of_round(round_.pk)}
    changer, steady = rows[people[0].pk], rows[people[1].pk]
    assert changer.test_retest_n_pairs == steady.test_retest_n_pairs == 6
    assert changer.test_retest_high < steady.test_retest_low  # six pairs are enough to tell them apart
    assert changer.weight < steady.weight  # and the consensus weighs the inconsistent rater less
    pooled = AgreementReport.objects.get(round=round_, metric="test_retest", level="pooled")
    assert pooled.n_pairable == 24 and pooled.ci_low <= pooled.value <= pooled.ci_high
    page = _dashboard(round_, coordinator)
    assert "over 24 repeat pairs from 4 raters" in page
