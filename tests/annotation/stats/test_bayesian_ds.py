"""bayesian-ds: calibration against simulated physicians with known truth, soft labels on split latents."""
from __future__ import annotations

import numpy as np
import pytest

from annotation.stats.bayesian_ds import (
    BayesianDawidSkeneConfig,
    bayesian_dawid_skene,
    related_mask,
)
from annotation.stats.consensus import METHODS, consensus_fit
from annotation.stats.simulation import DENSE, SPARSE, score, simulate
from annotation.stats.tables import ratings_from_rows


def test_consensus_fit_dispatches_every_method():
    simulation = simulate(regime=SPARSE, seed=11)
    for method in METHODS:
        result = consensus_fit(method=method, ratings=simulation.ratings, parents=simulation.parents)
        assert result.method == method
        np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="unknown consensus method 'vote'"):
        consensus_fit(method="vote", ratings=simulation.ratings)


def test_bayesian_ds_sparse_split_latents_keep_uncertainty():
    # Three raters who name three different concepts: the 1979 MLE is near-certain, bayesian-ds must not be.
    simulation = simulate(regime=SPARSE, seed=3)
    result = consensus_fit(method="bayesian-ds", ratings=simulation.ratings, parents=simulation.parents)
    ratings = simulation.ratings
    distinct = np.zeros((len(ratings.units), len(ratings.categories)), dtype=bool)
    distinct[ratings.unit_index, ratings.category_index] = True
    split = distinct.sum(axis=1) == 3
    unanimous = distinct.sum(axis=1) == 1
    assert split.sum() >= 20
    assert result.posterior[split].max(axis=1).mean() < 0.9
    assert result.entropy[split].mean() > 2 * result.entropy[unanimous].mean()


def test_bayesian_ds_outputs_are_coherent():
    simulation = simulate(regime=DENSE, seed=2)
    result = bayesian_dawid_skene(ratings=simulation.ratings, parents=simulation.parents)
    np.testing.assert_allclose(result.confusion.sum(axis=2), 1.0)
    assert result.priors.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(result.rater_accuracy, np.einsum("k,rkk->r", result.priors, result.confusion))
    assert ((result.entropy >= 0) & (result.entropy <= 1)).all()
    scores = score(posterior=result.posterior, truth=simulation.truth, ambiguous=simulation.ambiguous)
    assert scores.accuracy >= 0.88


def test_related_mask_marks_siblings_parent_and_child():
    mask = related_mask(labels=("A", "A1", "A2", "B1"), parents={"A": None, "A1": "A", "A2": "A", "B1": "B"})
    assert mask.tolist() == [
        [False, True, True, False],
        [True, False, True, False],
        [True, True, False, False],
        [False, False, False, False],
    ]


def test_bayesian_ds_config_is_validated():
    with pytest.raises(ValueError, match="row_strength"):
        BayesianDawidSkeneConfig(row_strength=0)
    with pytest.raises(ValueError, match="max_iterations"):
        BayesianDawidSkeneConfig(max_iterations=0)


def test_bayesian_ds_single_label_and_single_unit():
    ratings = ratings_from_rows(units=["u", "u"], raters=["a", "b"], values=["X", "X"])
    result = bayesian_dawid_skene(ratings=ratings)
    np.testing.assert_allclose(result.posterior, [[1.0]])
    assert result.to_json()["units"]["u"]["n_raters"] == 2
