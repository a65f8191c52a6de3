"""Who labels what, in which order: balanced load, institutions spread over each latent, hidden repeats."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .errors import InvalidInput

# Random restarts of the greedy planner; the plan with the widest institution spread wins.
_RESTARTS = 8


@dataclass(frozen=True)
class PlannedAssignment:
    """One queue entry: `position` counts from 0 within the rater's queue; a repeat names no original
    here, it is the (latent, rater) pair again with is_repeat set."""

    latent: Hashable
    rater: Hashable
    position: int
    is_repeat: bool


def _plan_once(
    *, latents: Sequence[Hashable], institution_of: dict[Hashable, Hashable], overlap: int, rng: random.Random
) -> dict[Hashable, list[Hashable]]:
    """latent → its raters. Always takes the least-loaded raters, which keeps every load within ±1 of
    every other at each step; among raters of equal load it prefers institutions this latent has not
    had yet, then institutions with many raters still at that load (so none is left alone at the end)."""
    raters = list(institution_of)
    load = dict.fromkeys(raters, 0)
    jitter = {rater: rng.random() for rater in raters}
    order = list(latents)
    rng.shuffle(order)
    chosen: dict[Hashable, list[Hashable]] = {}
    for latent in order:
        picked: list[Hashable] = []
        used_institutions: Counter = Counter()
        for _ in range(overlap):
            lowest = min(load[rater] for rater in raters if rater not in picked)
            at_lowest = Counter(institution_of[r] for r in raters if r not in picked and load[r] == lowest)
            best = min(
                (rater for rater in raters if rater not in picked),
                key=lambda r: (load[r], used_institutions[institution_of[r]], -at_lowest[institution_of[r]], jitter[r]),
            )
            picked.append(best)
            used_institutions[institution_of[best]] += 1
            load[best] += 1
        for rater in raters:  # fresh tie-breaks so that co-rater pairs vary from latent to latent
            jitter[rater] = rng.random()
        chosen[latent] = picked
    return chosen


def _spread(chosen: dict[Hashable, list[Hashable]], institution_of: dict[Hashable, Hashable]) -> int:
    return sum(len({institution_of[rater] for rater in raters}) for raters in chosen.values())


def _queue(*, items: list[Hashable], n_repeats: int, rng: random.Random) -> list[tuple[Hashable, bool]]:
    """A rater's queue: originals in random order; each repeat copies an item from the first half and sits
    at a random place in the second half of the whole queue, so it comes well after its original."""
    originals = list(items)
    rng.shuffle(originals)
    total = len(originals) + n_repeats
    half = total // 2
    if n_repeats == 0:
        return [(item, False) for item in originals]
    sources = originals[:half][:n_repeats]
    repeat_slots = sorted(rng.sample(range(half, total), n_repeats))
    repeats = list(sources)
    rng.shuffle(repeats)
    queue: list[tuple[Hashable, bool]] = []
    originals_iter = iter(originals)
    repeats_iter = iter(repeats)
    slots = set(repeat_slots)
    for position in range(total):
        queue.append((next(repeats_iter), True) if position in slots else (next(originals_iter), False))
    return queue


def assignment_plan(
    *,
    latents: Sequence[Hashable],
    raters: dict[Hashable, Hashable],
    overlap: int,
    repeat_fraction: float,
    seed: int,
    min_repeats: int = 0,
) -> list[PlannedAssignment]:
    """Plan a round. `raters` maps each rater to their institution.

    Every latent gets `overlap` distinct raters, drawn from as many institutions as the loads allow;
    every rater's load is within one of every other's; max(round(repeat_fraction × load), min_repeats)
    of each rater's items, at most all of them, come back once more as hidden repeats in the second half
    of their queue. The floor exists because a fraction alone gives a calibration round of ~17 items per
    rater one or two repeat pairs: too few for any test–retest figure.
    """
    if overlap < 1:
        raise InvalidInput("the overlap r must be at least 1")
    if not 0 <= repeat_fraction <= 1:
        raise InvalidInput("the repeat fraction must lie between 0 and 1")
    if min_repeats < 0:
        raise InvalidInput("the minimum number of hidden repeats cannot be negative")
    if not latents:
        raise InvalidInput("the round has no latents")
    if len(set(latents)) != len(latents):
        raise InvalidInput("a latent appears twice in the selection")
    if overlap > len(raters):
        raise InvalidInput(f"overlap r = {overlap} needs at least {overlap} raters; only {len(raters)} are available")
    rng = random.Random(seed)
    best: dict[Hashable, list[Hashable]] | None = None
    for _ in range(_RESTARTS):
        plan = _plan_once(latents=latents, institution_of=raters, overlap=overlap, rng=rng)
        if best is None or _spread(plan, raters) > _spread(best, raters):
            best = plan
    assert best is not None
    items: dict[Hashable, list[Hashable]] = defaultdict(list)
    for latent in latents:  # in the caller's order, so the shuffle below alone decides queue order
        for rater in best[latent]:
            items[rater].append(latent)
    planned: list[PlannedAssignment] = []
    for rater in raters:
        mine = items.get(rater, [])
        n_repeats = min(len(mine), max(round(repeat_fraction * len(mine)), min_repeats))
        for position, (latent, is_repeat) in enumerate(_queue(items=mine, n_repeats=n_repeats, rng=rng)):
            planned.append(PlannedAssignment(latent=latent, rater=rater, position=position, is_repeat=is_repeat))
    return planned
