"""The demo's simulated calibration round, on a small synthetic SAE: closed, revealed, marked simulated,
with visibly uncertain soft labels on split latents and a non-empty seniors' queue."""

from __future__ import annotations

import pytest

from accounts.models import Role
from annotation import selectors
from annotation.models import Consensus, RaterReliability, Round
from config.demo import SIMULATED_ROUND_NAME, DemoSettings, _rubric, _simulated_round
from features.democorpus.concepts import CONCEPTS
from features.models import Latent
from tests import factories
from tests.annotation import worlds

pytestmark = pytest.mark.django_db


def test_simulated_round_shows_agreement_soft_labels_routing_and_a_queue(postgres):
    institutions = {code: factories.institution(code.lower()) for code in ("ALDER", "BIRCH", "CEDAR")}
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=institutions["ALDER"])
    senior = factories.user(role=Role.SENIOR, institution_obj=institutions["BIRCH"])
    people = {"institutions": institutions, "users": {"coordinator": coordinator}}
    version = _rubric(by=coordinator)
    sae = worlds.sae_with_examples(n_latents=30)
    for latent in sae.latents.all():  # the mined best tag stands in for each latent's true concept
        latent.best_tag = CONCEPTS[latent.index % len(CONCEPTS)].code
        latent.save(update_fields=["best_tag"])
    real = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=version,
        institutions=list(institutions.values()),
        raters_list=worlds.raters(per_institution={"alder": 3}),
        n_latents=6,
    )
    demo = _simulated_round(
        sae=sae, version=version, real_round=real, people=people, config=DemoSettings(n_simulated_latents=24)
    )
    assert demo.simulated and demo.status == Round.Status.REVEALED and demo.routing_min_rounds == 1
    assert demo.name == SIMULATED_ROUND_NAME and demo.latents.count() == 24
    assert not set(demo.latents.values_list("pk", flat=True)) & set(real.latents.values_list("pk", flat=True))
    rows = list(Consensus.objects.of_sae(sae.pk).platform().filter(latent__in=demo.latents.all()))
    tops = sorted(max(row.posterior.values()) for row in rows)
    assert tops[0] < 0.6 and tops[-1] > 0.9, tops  # visibly uncertain and clear soft labels
    routed = {row.routing for row in rows}
    assert routed == {"consensus", "adjudicate"}, routed
    queue = list(selectors.adjudication_queue(user=senior))
    assert queue and all(latent.status == Latent.Status.AMBIGUOUS for latent in queue)
    reliability = RaterReliability.objects.of_round(demo.pk)
    assert reliability.count() == 6 and all(
        row.test_retest_n_pairs >= 3 and row.test_retest_low is not None for row in reliability
    )
    assert demo.agreement_reports.get(metric="krippendorff_alpha", level="nominal").value is not None
    # Idempotent: a second call finds the round and changes nothing.
    n_labels = sum(row.n_labels for row in rows)
    assert (
        _simulated_round(
            sae=sae, version=version, real_round=real, people=people, config=DemoSettings(n_simulated_latents=24)
        ).pk
        == demo.pk
    )
    assert (
        sum(row.n_labels for row in Consensus.objects.of_sae(sae.pk).platform().filter(latent__in=demo.latents.all()))
        == n_labels
    )
