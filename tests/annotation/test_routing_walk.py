"""Routing fires when it should: a calibration round driven through the real services on PostgreSQL with
simulated disagreement; unanimous latents reach consensus, split ones another round, then a senior."""

from __future__ import annotations

import random

import pytest

from annotation import selectors, services
from annotation.models import PLATFORM_CONSENSUS_METHOD, Assignment, Consensus, Round
from annotation.stats.routing import RoutingConfig
from features.models import Latent
from tests.annotation import worlds

pytestmark = pytest.mark.django_db
UNANIMOUS = range(0, 5)  # every rater says HF
SPLIT = range(5, 9)  # the three raters of the latent say three different things
THREE_WAY = ("AKI", "AF", "NEG")


@pytest.fixture
def world(postgres):
    coordinator = worlds.coordinator()
    people = worlds.raters(per_institution={"a": 2, "b": 2, "c": 2})
    return {
        "coordinator": coordinator,
        "version": worlds.rubric(by=coordinator),
        "people": people,
        "sae": worlds.sae_with_examples(n_latents=9),
        "institutions": list({p.profile.institution for p in people}),
    }


def _round(
    world, *, routing: RoutingConfig | None = None, rule: str = "hand", n_latents: int | None = None, seed: int = 1
):
    round_ = services.round_create(
        name="walk",
        kind="calibration",
        sae=world["sae"],
        rubric_version=world["version"],
        institutions=world["institutions"],
        overlap=3,
        selection_rule=rule,
        n_latents=n_latents,
        latent_indices=list(range(9)) if rule == "hand" else (),
        raters=world["people"],
        seed=seed,
        routing=routing,
        by=world["coordinator"],
    )
    services.round_open(round=round_, by=world["coordinator"])
    return round_


def _label(round_, *, salt: int = 0) -> None:
    """Unanimous latents get HF from everyone; on each split latent its three raters say the three codes
    of THREE_WAY in a random order (seeded per latent and round, so that no rater has a habit the model
    could learn); a repeat repeats its original."""
    raters_of: dict[int, list[int]] = {}
    for latent_id, rater_id in (
        Assignment.objects.filter(round=round_, is_repeat=False)
        .order_by("latent_id", "rater_id")
        .values_list("latent_id", "rater_id")
    ):
        raters_of.setdefault(latent_id, []).append(rater_id)
    ordinal = Round.objects.filter(sae_id=round_.sae_id, pk__lt=round_.pk).count()  # not ids: reproducible
    index_of = dict(Latent.objects.filter(pk__in=raters_of).values_list("pk", "index"))
    codes_of = {
        latent_id: random.Random(index_of[latent_id] * 7919 + ordinal * 31 + salt).sample(THREE_WAY, 3)
        for latent_id in raters_of
    }

    def choose(assignment):
        if assignment.latent.index in UNANIMOUS:
            return "HF"
        return codes_of[assignment.latent_id][raters_of[assignment.latent_id].index(assignment.rater_id)]

    worlds.label_everything(round_, choose=choose)


def _statuses(world, indices) -> set[str]:
    return set(Latent.objects.filter(sae=world["sae"], index__in=indices).values_list("status", flat=True))


@pytest.mark.parametrize("seed", range(1, 7))
def test_split_latents_wait_one_round_then_reach_the_senior_queue(world, seed):
    # Six assignments of raters to latents (and orders of the split codes): no draw may be lucky.
    first = _round(world, seed=seed)
    _label(first, salt=seed)
    worlds.close_round(round=first, by=world["coordinator"])
    assert _statuses(world, UNANIMOUS) == {Latent.Status.CONSENSUS}
    assert _statuses(world, SPLIT) == {Latent.Status.IN_ROUND}
    rows = {
        row.latent.index: row for row in Consensus.objects.of_sae(world["sae"].pk).platform().select_related("latent")
    }
    for index in SPLIT:
        assert rows[index].routing == "another_round" and rows[index].n_raters == 3
        assert rows[index].entropy > 0.5, rows[index].posterior  # a three-way split is uncertain, not certain
    for index in UNANIMOUS:
        assert rows[index].routing == "consensus" and rows[index].map_concept == "HF"

    # The follow-up takes exactly the latents that need another round.
    second = _round(world, rule="needs_another_round", n_latents=20, seed=seed)
    assert set(second.latents.values_list("index", flat=True)) == set(SPLIT)
    _label(second, salt=seed)
    worlds.close_round(round=second, by=world["coordinator"])
    final = {
        row.latent.index: (row.posterior, row.routing)
        for row in Consensus.objects.of_sae(world["sae"].pk).platform().select_related("latent")
    }
    assert _statuses(world, SPLIT) == {Latent.Status.AMBIGUOUS}, final
    assert _statuses(world, UNANIMOUS) == {Latent.Status.CONSENSUS}
    senior = worlds.raters(per_institution={"a": 1}, role="senior")[0]
    queue = list(selectors.adjudication_queue(user=senior))
    assert {latent.index for latent in queue} == set(SPLIT)
    assert all(latent.consensus_n_rounds == 2 and latent.consensus_entropy > 0.5 for latent in queue)


def test_thresholds_are_the_rounds_own(world):
    # R = 1: the split latents go to a senior after this one round.
    eager = _round(world, routing=RoutingConfig(min_rounds=1))
    assert (eager.routing_min_rounds, eager.routing_entropy_ceiling, eager.routing_top_posterior_floor) == (1, 0.5, 0.6)
    _label(eager)
    worlds.close_round(round=eager, by=world["coordinator"])
    assert _statuses(world, SPLIT) == {Latent.Status.AMBIGUOUS}
    assert all(
        "after 1 rounds (≥ 1)" in row.routing_reason
        for row in Consensus.objects.of_sae(world["sae"].pk).platform().filter(latent__index__in=SPLIT)
    )


def test_a_lenient_round_accepts_every_consensus(world):
    lenient = _round(world, routing=RoutingConfig(min_rounds=1, entropy_ceiling=1.0, top_posterior_floor=0.0))
    _label(lenient)
    worlds.close_round(round=lenient, by=world["coordinator"])
    assert _statuses(world, range(9)) == {Latent.Status.CONSENSUS}
    assert Consensus.objects.of_sae(world["sae"].pk).filter(method=PLATFORM_CONSENSUS_METHOD).count() == 9
