"""Assignment planning: equal load ±1, institutions spread over each latent, repeats in the second half."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from annotation import services
from annotation.models import Assignment
from annotation.services import InvalidInput, assignment_plan
from tests.annotation import worlds


def _raters(sizes: dict[str, int]) -> dict[str, str]:
    return {f"{institution}{i}": institution for institution, n in sizes.items() for i in range(n)}


@pytest.mark.parametrize(
    ("sizes", "n_latents", "overlap"),
    [
        ({"a": 3, "b": 3, "c": 3}, 30, 3),
        ({"a": 2, "b": 2, "c": 2, "d": 2}, 25, 3),
        ({"a": 5, "b": 1}, 17, 2),
        ({"a": 4}, 9, 4),
        ({"a": 2, "b": 3, "c": 1}, 11, 2),
    ],
)
def test_plan_balances_load_within_one(sizes, n_latents, overlap):
    raters = _raters(sizes)
    plan = assignment_plan(latents=list(range(n_latents)), raters=raters, overlap=overlap, repeat_fraction=0.0, seed=1)
    load = Counter(item.rater for item in plan)
    assert sum(load.values()) == n_latents * overlap
    loads = [load.get(rater, 0) for rater in raters]
    assert max(loads) - min(loads) <= 1
    per_latent = defaultdict(list)
    for item in plan:
        per_latent[item.latent].append(item.rater)
    assert all(len(set(chosen)) == overlap == len(chosen) for chosen in per_latent.values())


@pytest.mark.parametrize(
    ("sizes", "overlap"), [({"a": 3, "b": 3, "c": 3}, 3), ({"a": 2, "b": 2, "c": 2}, 2), ({"a": 3, "b": 3}, 4)]
)
def test_plan_spreads_each_latent_over_institutions(sizes, overlap):
    raters = _raters(sizes)
    plan = assignment_plan(latents=list(range(24)), raters=raters, overlap=overlap, repeat_fraction=0.0, seed=3)
    per_latent = defaultdict(set)
    for item in plan:
        per_latent[item.latent].add(raters[item.rater])
    best = min(overlap, len(sizes))
    assert all(len(institutions) == best for institutions in per_latent.values())


def test_plan_places_hidden_repeats_in_the_second_half_after_their_original():
    raters = _raters({"a": 3, "b": 3})
    plan = assignment_plan(latents=list(range(20)), raters=raters, overlap=3, repeat_fraction=0.2, seed=5)
    by_rater = defaultdict(list)
    for item in plan:
        by_rater[item.rater].append(item)
    for items in by_rater.values():
        originals = [i for i in items if not i.is_repeat]
        repeats = [i for i in items if i.is_repeat]
        assert len(repeats) == round(0.2 * len(originals))
        assert sorted(i.position for i in items) == list(range(len(items)))
        half = len(items) // 2
        first_position = {i.latent: i.position for i in originals}
        for repeat in repeats:
            assert repeat.position >= half
            assert first_position[repeat.latent] < repeat.position
        assert len({i.latent for i in repeats}) == len(repeats)  # at most one repeat per latent


def test_plan_is_reproducible_from_its_seed():
    raters = _raters({"a": 2, "b": 2})
    first = assignment_plan(latents=list(range(10)), raters=raters, overlap=2, repeat_fraction=0.3, seed=11)
    again = assignment_plan(latents=list(range(10)), raters=raters, overlap=2, repeat_fraction=0.3, seed=11)
    assert first == again


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overlap": 5}, "needs at least 5 raters"),
        ({"overlap": 0}, "at least 1"),
        ({"repeat_fraction": 1.5}, "between 0 and 1"),
        ({"latents": []}, "no latents"),
        ({"latents": [1, 1]}, "twice"),
    ],
)
def test_plan_refuses_impossible_requests(kwargs, message):
    arguments = {
        "latents": list(range(4)),
        "raters": _raters({"a": 2, "b": 2}),
        "overlap": 2,
        "repeat_fraction": 0.0,
        "seed": 0,
        **kwargs,
    }
    with pytest.raises(InvalidInput, match=message):
        assignment_plan(**arguments)


@pytest.mark.django_db
def test_round_create_saves_the_plan_and_respects_the_unique_constraint(postgres):
    coordinator = worlds.coordinator()
    people = worlds.raters(per_institution={"a": 3, "b": 3, "c": 2})
    sae = worlds.sae_with_examples(n_latents=12)
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=worlds.rubric(),
        raters_list=people,
        overlap=3,
        repeat_fraction=0.25,
        institutions=list({p.profile.institution for p in people}),
        open_it=False,
    )
    assignments = list(Assignment.objects.filter(round=round_))
    keys = [(a.latent_id, a.rater_id, a.is_repeat) for a in assignments]
    assert len(keys) == len(set(keys))
    originals = [a for a in assignments if not a.is_repeat]
    assert len(originals) == 12 * 3
    for repeat in (a for a in assignments if a.is_repeat):
        original = repeat.repeat_of
        assert (original.latent_id, original.rater_id, original.is_repeat) == (repeat.latent_id, repeat.rater_id, False)
    loads = Counter(a.rater_id for a in originals)
    assert max(loads.values()) - min(loads.values()) <= 1
    assert round_.latents.count() == 12
    assert round_.selection_parameters["seed"] == 7


@pytest.mark.django_db
@pytest.mark.parametrize(("rule", "expected"), [("highest_density", [5, 4, 3]), ("lowest_entropy", [5, 4, 3])])
def test_latent_selection_rules(postgres, rule, expected):
    sae = worlds.sae_with_examples(n_latents=6)
    chosen = services.latents_select(sae=sae, rule=rule, n_latents=3)
    assert [latent.index for latent in chosen] == expected


@pytest.mark.django_db
def test_random_and_hand_selection(postgres):
    sae = worlds.sae_with_examples(n_latents=6)
    first = services.latents_select(sae=sae, rule="random", n_latents=4, seed=3)
    assert len(first) == 4 and first == services.latents_select(sae=sae, rule="random", n_latents=4, seed=3)
    assert [latent.index for latent in services.latents_select(sae=sae, rule="hand", indices=[4, 1])] == [4, 1]
    with pytest.raises(InvalidInput, match="99"):
        services.latents_select(sae=sae, rule="hand", indices=[1, 99])


@pytest.mark.django_db
def test_round_create_refuses_institutions_that_may_not_see_a_private_corpus(postgres):
    own = worlds.factories.institution("own")
    other = worlds.factories.institution("other")
    sae = worlds.sae_with_examples(n_latents=3, institution=own)
    people = worlds.raters(per_institution={"own": 2, "other": 2})
    with pytest.raises(InvalidInput, match="private to own"):
        worlds.make_round(
            by=worlds.coordinator(),
            sae=sae,
            version=worlds.rubric(),
            raters_list=people,
            overlap=2,
            institutions=[own, other],
        )


@pytest.mark.parametrize(
    ("n_latents", "fraction", "expected"), [(34, 0.0, 3), (34, 0.1, 3), (60, 0.1, 3), (120, 0.1, 4), (2, 0.0, 1)]
)
def test_every_rater_gets_at_least_min_repeats_late_in_the_queue(n_latents, fraction, expected):
    """A calibration round of ~17 items per rater at 10 % gave 2 repeats: too few for any test–retest."""
    raters = _raters({"a": 3, "b": 3})
    plan = assignment_plan(
        latents=list(range(n_latents)), raters=raters, overlap=3, repeat_fraction=fraction, seed=2, min_repeats=3
    )
    by_rater = defaultdict(list)
    for item in plan:
        by_rater[item.rater].append(item)
    for items in by_rater.values():
        originals = [i for i in items if not i.is_repeat]
        repeats = [i for i in items if i.is_repeat]
        assert len(repeats) == min(len(originals), max(round(fraction * len(originals)), 3))
        assert len(repeats) >= min(expected, len(originals))
        first_position = {i.latent: i.position for i in originals}
        assert all(r.position >= len(items) // 2 and first_position[r.latent] < r.position for r in repeats)
