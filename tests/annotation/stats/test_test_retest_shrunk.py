"""Test–retest that computes from one repeat pair on: pooled Jeffreys interval, per-rater shrinkage."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.stats.reliability import test_retest_shrunk
from annotation.stats.tables import ratings_from_rows

CONCEPTS = ("HF", "AKI", "COPD", "SEPSIS", "DM2")


def _ratings(rows):
    """rows: (unit, rater, value, is_repeat)."""
    return ratings_from_rows(
        units=[r[0] for r in rows],
        raters=[r[1] for r in rows],
        values=[r[2] for r in rows],
        is_repeat=[r[3] for r in rows],
    )


def _simulated(*, rng, self_agreement: dict[str, float], n_units: int, repeats_per_rater: int):
    """Each rater labels n_units latents uniformly over CONCEPTS and repeats the first `repeats_per_rater`;
    a repeat copies the first answer with probability q_r, else is drawn afresh (so it still matches
    by chance 1/K): true agreement A_r = q_r + (1 − q_r)/K."""
    rows = []
    for rater, q in self_agreement.items():
        for unit in range(n_units):
            first = CONCEPTS[rng.integers(len(CONCEPTS))]
            rows.append((f"{rater}-{unit}", rater, first, False))
            if unit < repeats_per_rater:
                again = first if rng.random() < q else CONCEPTS[rng.integers(len(CONCEPTS))]
                rows.append((f"{rater}-{unit}", rater, again, True))
    return _ratings(rows)


def test_one_pair_gives_a_value_and_a_wide_interval_not_a_dash():
    rows = [
        ("u1", "a", "HF", False),
        ("u1", "b", "AKI", False),
        ("u2", "a", "COPD", False),
        ("u2", "b", "COPD", False),
        ("u1", "a", "HF", True),
    ]
    result = test_retest_shrunk(ratings=_ratings(rows))
    assert result.pooled.n_pairs == 1 and result.pooled.n_agreeing == 1
    # p_e from every judgment: HF 2/5, AKI 1/5, COPD 2/5 → 0.36; pooled A = 1 → kappa 1.
    assert result.chance_agreement == pytest.approx(0.36)
    assert result.pooled.kappa == pytest.approx(1.0)
    # Jeffreys interval for 1 of 1: Beta(1.5, 0.5) quantiles, mapped through (A − p_e) / (1 − p_e).
    from scipy.stats import beta

    low = (beta.ppf(0.025, 1.5, 0.5) - 0.36) / 0.64
    assert result.pooled.low == pytest.approx(low) and result.pooled.high == pytest.approx(1.0)
    assert result.pooled.low < 0.3  # one pair says little
    rater_a = result.raters["a"]
    assert rater_a.kappa is not None and rater_a.n_pairs == 1 and rater_a.reason is None
    assert rater_a.low < rater_a.kappa < rater_a.high
    # b has no repeat: no value, and the reason says why.
    assert result.raters["b"].kappa is None and result.raters["b"].reason == "no repeat pairs"


def test_no_pairs_at_all_says_so():
    result = test_retest_shrunk(ratings=_ratings([("u1", "a", "HF", False), ("u1", "b", "AKI", False)]))
    assert result.pooled.kappa is None and result.pooled.reason == "no repeat pairs"


def test_one_concept_throughout_is_undefined_with_a_reason():
    rows = [("u1", "a", "HF", False), ("u1", "a", "HF", True), ("u2", "b", "HF", False)]
    result = test_retest_shrunk(ratings=_ratings(rows))
    assert result.pooled.kappa is None and "one concept" in result.pooled.reason
    assert result.pooled.n_pairs == 1


def test_many_pairs_recover_each_raters_self_agreement():
    rng = np.random.default_rng(3)
    truth = {"steady": 0.9, "middling": 0.6, "erratic": 0.1}
    ratings = _simulated(rng=rng, self_agreement=truth, n_units=400, repeats_per_rater=300)
    result = test_retest_shrunk(ratings=ratings)
    k = len(CONCEPTS)
    for rater, q in truth.items():
        estimate = result.raters[rater]
        agreement = q + (1 - q) / k
        assert estimate.n_pairs == 300
        assert abs(estimate.agreement - agreement) < 0.06
        assert estimate.low <= (agreement - result.chance_agreement) / (1 - result.chance_agreement) <= estimate.high
    assert result.raters["steady"].kappa > result.raters["middling"].kappa > result.raters["erratic"].kappa
    assert result.pooled.n_pairs == 900 and result.pooled.high - result.pooled.low < 0.1


def test_few_pairs_are_shrunk_toward_the_pool():
    rng = np.random.default_rng(5)
    ratings = _simulated(
        rng=rng, self_agreement={"a": 0.9, "b": 0.9, "c": 0.9, "d": 0.0}, n_units=60, repeats_per_rater=3
    )
    result = test_retest_shrunk(ratings=ratings)
    pool = result.pooled.agreement
    for estimate in result.raters.values():
        raw = estimate.n_agreeing / estimate.n_pairs
        # posterior mean lies between the rater's own share and the pool's
        assert min(raw, pool) - 1e-9 <= estimate.agreement <= max(raw, pool) + 1e-9
        assert estimate.high - estimate.low > 0.3  # three pairs: still a wide interval


def test_pooled_interval_covers_the_truth_at_about_its_level():
    """Coverage over 300 simulated rounds of 6 raters × 3 repeats (the calibration-round regime)."""
    rng = np.random.default_rng(11)
    q = 0.7
    agreement = q + (1 - q) / len(CONCEPTS)
    covered = 0
    for _ in range(300):
        result = test_retest_shrunk(
            ratings=_simulated(rng=rng, self_agreement={f"r{i}": q for i in range(6)}, n_units=17, repeats_per_rater=3)
        )
        pooled = result.pooled
        low_a = pooled.low * (1 - result.chance_agreement) + result.chance_agreement
        high_a = pooled.high * (1 - result.chance_agreement) + result.chance_agreement
        covered += low_a <= agreement <= high_a
    assert 0.90 <= covered / 300 <= 0.99
