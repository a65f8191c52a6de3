"""Closing a round persists agreement, reliability, consensus and routing; recomputing changes nothing."""

from __future__ import annotations

import pytest

from annotation import services
from annotation.models import PLATFORM_CONSENSUS_METHOD, AgreementReport, Assignment, Consensus, RaterReliability, Round
from features.models import Latent
from tests.annotation import worlds

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_round(postgres):
    coordinator = worlds.coordinator()
    version = worlds.rubric(by=coordinator)
    sae = worlds.sae_with_examples(n_latents=8)
    people = worlds.raters(per_institution={"a": 2, "b": 2})
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=version,
        raters_list=people,
        overlap=3,
        institutions=[p.profile.institution for p in people],
        repeat_fraction=0.5,
    )

    # Latents 0–3: everyone says HF; 4–7: split between AKI and RENAL, by rater.
    def choose(assignment):
        if assignment.latent.index < 4:
            return "HF"
        return "AKI" if assignment.rater_id % 2 else "RENAL"

    worlds.label_everything(round_, choose=choose)
    worlds.close_round(round=round_, by=coordinator)
    round_.refresh_from_db()
    return round_, coordinator, sae


def _snapshot(round_, sae):
    reports = sorted(
        (r.metric, r.level, r.value, r.ci_low, r.ci_high, r.n_units)
        for r in AgreementReport.objects.filter(round=round_)
    )
    consensus = sorted(
        (c.latent_id, c.scope, c.method, c.map_concept, round(c.entropy, 9), c.n_labels, c.n_raters)
        for c in Consensus.objects.all()
    )
    reliability = sorted(
        (r.rater_id, r.scope, r.weight, r.test_retest, r.test_retest_n_pairs) for r in RaterReliability.objects.all()
    )
    return reports, consensus, reliability


def test_close_writes_agreement_reports(closed_round):
    round_, _, _ = closed_round
    assert round_.status == Round.Status.CLOSED
    reports = {(r.metric, r.level): r for r in AgreementReport.objects.filter(round=round_)}
    for key in [
        ("krippendorff_alpha", "nominal"),
        ("krippendorff_alpha", "hierarchical"),
        ("fleiss_kappa", "nominal"),
        ("percent_agreement", "nominal"),
        ("cohen_kappa_mean", "nominal"),
    ]:
        assert key in reports, key
    nominal = reports[("krippendorff_alpha", "nominal")]
    assert nominal.value is not None and -1 <= nominal.value <= 1
    assert nominal.ci_low <= nominal.value <= nominal.ci_high
    assert nominal.n_units == 8 and nominal.n_raters == 4
    # Partial credit: AKI and RENAL are neighbours in the tree, so hierarchical alpha beats nominal.
    assert reports[("krippendorff_alpha", "hierarchical")].value > nominal.value


def test_close_writes_reliability_consensus_and_routing(closed_round):
    round_, _, sae = closed_round
    raters = set(Assignment.objects.filter(round=round_).values_list("rater_id", flat=True))
    for rows in (RaterReliability.objects.of_round(round_.pk), RaterReliability.objects.of_sae(sae.pk)):
        assert set(rows.values_list("rater_id", flat=True)) == raters
        assert all(0 < row.weight <= 1 for row in rows)
        # min_repeats = 3 hidden repeats each: every rater's test–retest computes, with an interval.
        assert all(
            row.test_retest_n_pairs >= 3 and row.test_retest_low <= row.test_retest <= row.test_retest_high
            for row in rows
        )
    for method in (PLATFORM_CONSENSUS_METHOD, "dawid-skene"):  # the platform's consensus and its 1979 baseline
        round_rows = Consensus.objects.of_round(round_.pk).filter(method=method)
        assert round_rows.count() == 8
        for row in round_rows:
            assert abs(sum(row.posterior.values()) - 1) < 1e-3
            assert 0 <= row.entropy <= 1
            assert row.n_labels >= 3 and row.n_raters == 3 and row.scope == f"round:{round_.pk}"
        unanimous = round_rows.get(latent__index=0)
        assert unanimous.map_concept == "HF" and unanimous.agreement == 1.0
    sae_rows = Consensus.objects.of_sae(sae.pk).platform()
    assert sae_rows.count() == 8 and all(row.routing for row in sae_rows)
    # One round with labels: clear latents reach consensus, split ones wait for another round.
    assert Latent.objects.get(sae=sae, index=0).status == Latent.Status.CONSENSUS
    split = sae_rows.filter(routing="another_round")
    assert Latent.objects.filter(pk__in=split.values("latent_id")).exclude(status=Latent.Status.IN_ROUND).count() == 0


def test_recomputing_is_idempotent(closed_round):
    round_, coordinator, sae = closed_round
    before = _snapshot(round_, sae)
    services.round_statistics_compute(round=round_, by=coordinator)
    services.round_statistics_compute(round=round_, by=coordinator)
    assert _snapshot(round_, sae) == before


def test_split_latents_go_to_adjudication_after_two_rounds(closed_round):
    round_, coordinator, sae = closed_round
    people = list({a.rater for a in Assignment.objects.filter(round=round_).select_related("rater__profile")})
    second = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=round_.rubric_version,
        kind="production",
        institutions=list(round_.institutions.all()),
        raters_list=people,
        overlap=3,
    )
    worlds.label_everything(
        second, choose=lambda a: "HF" if a.latent.index < 4 else ("AKI" if a.rater_id % 2 else "RENAL")
    )
    worlds.close_round(round=second, by=coordinator)
    ambiguous = Latent.objects.filter(sae=sae, status=Latent.Status.AMBIGUOUS)
    assert ambiguous.exists()
    assert all(row.n_rounds == 2 for row in Consensus.objects.of_sae(sae.pk).platform().filter(latent__in=ambiguous))
    assert Latent.objects.get(sae=sae, index=0).status == Latent.Status.CONSENSUS


def test_statistics_refuse_an_open_round(postgres):
    coordinator = worlds.coordinator()
    sae = worlds.sae_with_examples(n_latents=3)
    people = worlds.raters(per_institution={"a": 3})
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=worlds.rubric(),
        raters_list=people,
        institutions=[people[0].profile.institution],
    )
    with pytest.raises(services.RoundStateError):
        services.round_statistics_compute(round=round_, by=coordinator)


def test_closing_a_round_without_labels_releases_its_latents(postgres):
    coordinator = worlds.coordinator()
    sae = worlds.sae_with_examples(n_latents=3)
    people = worlds.raters(per_institution={"a": 3})
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=worlds.rubric(),
        raters_list=people,
        institutions=[people[0].profile.institution],
    )
    assert set(sae.latents.values_list("status", flat=True)) == {Latent.Status.IN_ROUND}
    worlds.close_round(round=round_, by=coordinator)
    assert set(sae.latents.values_list("status", flat=True)) == {Latent.Status.UNLABELLED}
    assert not AgreementReport.objects.filter(round=round_).exists()
