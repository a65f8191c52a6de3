"""Drift statistics against independent implementations (scipy) and simulations with known truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, false_discovery_control

from inference.engine.drift import (
    CorpusStatistics,
    DriftConfig,
    benjamini_hochberg,
    compare_corpora,
    corpus_statistics,
    jensen_shannon,
    two_proportion_p_values,
)


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(0).uniform(size=200) ** 3
    assert np.allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"))


def test_two_proportion_test_equals_uncorrected_chi_square():
    counts_a, counts_b = np.array([30, 5, 120]), np.array([10, 6, 60])
    n_a, n_b = 1000, 800
    ours = two_proportion_p_values(counts_a, n_a, counts_b, n_b)
    for i in range(3):
        table = [[counts_a[i], n_a - counts_a[i]], [counts_b[i], n_b - counts_b[i]]]
        assert ours[i] == pytest.approx(chi2_contingency(table, correction=False).pvalue, rel=1e-9)


def test_jensen_shannon_matches_scipy_in_bits():
    p, q = np.array([5.0, 1, 0, 4]), np.array([1.0, 1, 3, 5])
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2)
    assert jensen_shannon(p, p) == pytest.approx(0.0)


def _simulated(rates: np.ndarray, n_tokens: int, seed: int, fve: float = 0.8) -> CorpusStatistics:
    counts = np.random.default_rng(seed).binomial(n_tokens, rates)
    histogram = np.zeros(rates.size + 1, dtype=np.int64)
    histogram[16] = n_tokens
    return CorpusStatistics(n_tokens=n_tokens, firing_counts=counts, l0_histogram=histogram, fve=fve, mse=0.1)


def test_same_rates_are_not_drift_and_shifted_latents_are_flagged():
    rng = np.random.default_rng(1)
    rates = rng.uniform(0.002, 0.1, size=500)
    reference = _simulated(rates, 40_000, seed=2)
    same = compare_corpora(reference=reference, corpus=_simulated(rates, 15_000, seed=3))
    assert not same.drift and same.flagged == []
    shifted_rates = rates.copy()
    planted = [7, 70, 300]
    shifted_rates[planted] = np.minimum(rates[planted] * 6, 0.5)
    shifted_rates[[11, 111]] = rates[[11, 111]] / 8
    shifted = compare_corpora(reference=reference, corpus=_simulated(shifted_rates, 15_000, seed=3))
    assert {flag.index for flag in shifted.flagged} == {7, 70, 300, 11, 111}
    assert all(flag.log_ratio > 1 for flag in shifted.flagged if flag.index in planted)
    assert shifted.divergence > same.divergence


def test_fve_drop_alone_is_drift_and_thresholds_are_configurable():
    rates = np.full(50, 0.05)
    reference, corpus = _simulated(rates, 20_000, 0, fve=0.8), _simulated(rates, 20_000, 1, fve=0.6)
    assert compare_corpora(reference=reference, corpus=corpus).reasons == ["fve_drop"]
    assert not compare_corpora(reference=reference, corpus=corpus, config=DriftConfig(fve_drop_threshold=0.3)).drift
    with pytest.raises(ValueError):
        DriftConfig(fdr=0)


def test_corpus_statistics_counts_firing_and_fve_of_an_identity_code():
    x = torch.randn(300, 4)
    encode = lambda v: torch.relu(torch.cat([v, -v], dim=1))
    decode = lambda z: z[:, :4] - z[:, 4:]
    stats = corpus_statistics(batches=[x[:100], x[100:]], encode=encode, decode=decode)
    assert stats.n_tokens == 300
    assert stats.firing_counts.tolist() == [int((x[:, j] > 0).sum()) for j in range(4)] + [
        int((x[:, j] < 0).sum()) for j in range(4)
    ]
    assert stats.fve == pytest.approx(1.0)
    assert stats.l0_histogram.sum() == 300 and stats.l0_histogram[4] == 300
