"""Majority vote, weighted vote and Dawid–Skene EM: the 1979 paper's estimates and simulated raters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotation.stats.consensus import (
    DawidSkeneConfig,
    dawid_skene,
    majority_vote,
    normalised_entropy,
    weighted_vote,
)
from annotation.stats.tables import ratings_from_rows, read_long_csv

FIXTURES = Path(__file__).parent / "fixtures"
# Dawid & Skene (1979) fitted by maximum likelihood from the vote-share start: no smoothing.
PAPER = DawidSkeneConfig(smoothing=0.0, tolerance=1e-12, max_iterations=1000)


def _dawid_skene_1979():
    return read_long_csv(path=FIXTURES / "dawid_skene_1979.csv")


def _rows(rows):
    units, raters, values = zip(*rows, strict=False)
    return ratings_from_rows(units=units, raters=raters, values=values)


def test_dawid_skene_reproduces_the_1979_class_marginals():
    # Dawid & Skene (1979), Applied Statistics 28:20–28, Table 1 data (45 patients, 5 anaesthetists, observer 1
    # three times); the EM estimates of the class marginals are 0.3996, 0.4220, 0.1118, 0.0667.
    result = dawid_skene(ratings=_dawid_skene_1979(), config=PAPER)
    assert result.converged
    np.testing.assert_allclose(result.priors, [0.3996, 0.4220, 0.1118, 0.0667], atol=5e-5)


def test_dawid_skene_most_likely_class_of_unanimous_patients():
    # Patients every observer put in the same class on every occasion (Table 1) keep that class.
    ratings = _dawid_skene_1979()
    result = dawid_skene(ratings=ratings, config=PAPER)
    labels = dict(zip(result.units, result.map_labels, strict=False))
    unanimous = {"p1": "1", "p11": "4", "p13": "1", "p17": "1", "p21": "2", "p34": "2", "p45": "2"}
    assert {unit: labels[unit] for unit in unanimous} == unanimous


def test_dawid_skene_counts_repeats_as_separate_observations():
    # Observer 1's three readings per patient each enter the likelihood: with only the first reading the
    # marginals move away from the paper's.
    ratings = _dawid_skene_1979()
    first = ratings.occasion == 0
    first_only = ratings_from_rows(
        units=[ratings.units[i] for i in ratings.unit_index[first]],
        raters=[ratings.raters[i] for i in ratings.rater_index[first]],
        values=[ratings.categories[i] for i in ratings.category_index[first]],
    )
    all_readings = dawid_skene(ratings=ratings, config=PAPER).priors
    one_reading = dawid_skene(ratings=first_only, config=PAPER).priors
    assert np.abs(all_readings - one_reading).max() > 5e-3


def test_dawid_skene_outputs_are_coherent():
    result = dawid_skene(ratings=_dawid_skene_1979())
    np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0)
    np.testing.assert_allclose(result.confusion.sum(axis=2), 1.0)
    assert result.priors.sum() == pytest.approx(1.0)
    expected_accuracy = np.einsum("k,rkk->r", result.priors, result.confusion)
    np.testing.assert_allclose(result.rater_accuracy, expected_accuracy)
    assert ((result.entropy >= 0) & (result.entropy <= 1)).all()


def _simulate(seed: int = 0, n_units: int = 600, n_labels: int = 4, per_unit: int = 5):
    """Known truth; experts (90% right), careless raters (30% right, else uniform) and systematic confusers
    (say label 1 for truth 0 and label 0 for truth 1, otherwise right)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_labels, size=n_units)
    kinds = ["expert"] * 3 + ["careless"] * 5 + ["confuser"] * 4
    rows = []
    for unit in range(n_units):
        for rater in rng.choice(len(kinds), size=per_unit, replace=False):
            kind, true = kinds[rater], truth[unit]
            if kind == "expert":
                label = true if rng.random() < 0.9 else rng.integers(0, n_labels)
            elif kind == "careless":
                label = true if rng.random() < 0.3 else rng.integers(0, n_labels)
            else:
                label = {0: 1, 1: 0}.get(int(true), int(true)) if rng.random() < 0.9 else true
            rows.append((f"u{unit}", f"{kind}{rater}", f"c{label}"))
    return _rows(rows), {f"u{unit}": f"c{label}" for unit, label in enumerate(truth)}


def test_dawid_skene_beats_majority_vote_on_simulated_raters():
    ratings, truth = _simulate()

    def accuracy(result):
        return np.mean([label == truth[unit] for unit, label in zip(result.units, result.map_labels, strict=False)])

    majority = accuracy(majority_vote(ratings=ratings))
    em = accuracy(dawid_skene(ratings=ratings))
    print(f"\nsimulated raters, 600 units: majority vote accuracy {majority:.3f}, Dawid–Skene accuracy {em:.3f}")
    assert em > majority + 0.05


def test_dawid_skene_recovers_rater_quality_on_simulated_raters():
    ratings, _ = _simulate(seed=1)
    result = dawid_skene(ratings=ratings)
    accuracy = dict(zip(result.raters, result.rater_accuracy, strict=False))
    experts = [value for rater, value in accuracy.items() if rater.startswith("expert")]
    careless = [value for rater, value in accuracy.items() if rater.startswith("careless")]
    assert min(experts) > max(careless)


def test_majority_vote_shares_and_tie_break():
    ratings = _rows([("u1", "a", "X"), ("u1", "b", "X"), ("u1", "c", "Y"), ("u2", "a", "Y"), ("u2", "b", "X")])
    result = majority_vote(ratings=ratings)
    np.testing.assert_allclose(result.posterior, [[2 / 3, 1 / 3], [0.5, 0.5]])
    assert result.map_labels == ("X", "X")  # a tie goes to the label that sorts first
    assert result.entropy[1] == pytest.approx(1.0)
    np.testing.assert_allclose(result.rater_accuracy, [0.5, 1.0, 0.0])


def test_majority_vote_leaves_out_repeats():
    ratings = ratings_from_rows(
        units=["u", "u", "u", "u"],
        raters=["a", "a", "a", "b"],
        values=["X", "X", "X", "Y"],
        is_repeat=[False, True, True, False],
    )
    np.testing.assert_allclose(majority_vote(ratings=ratings).posterior, [[0.5, 0.5]])


def test_weighted_vote_follows_the_heavier_rater():
    ratings = _rows([("u", "a", "X"), ("u", "b", "Y"), ("u", "c", "Y")])
    result = weighted_vote(ratings=ratings, weights={"a": 1.0, "b": 0.2, "c": 0.2})
    assert result.map_labels == ("X",)
    assert result.posterior[0, 0] == pytest.approx(1 / 1.4)
    with pytest.raises(ValueError, match="no weight for raters c"):
        weighted_vote(ratings=ratings, weights={"a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="positive"):
        weighted_vote(ratings=ratings, weights={"a": 1.0, "b": 0.0, "c": 1.0})


def test_to_json_has_the_design_shape():
    ratings = _rows([("L1", "a", "X"), ("L1", "b", "Y"), ("L2", "a", "Y"), ("L2", "b", "Y")])
    payload = dawid_skene(ratings=ratings).to_json()
    assert set(payload) == {"method", "units", "raters"} and payload["method"] == "dawid-skene"
    assert set(payload["units"]) == {"L1", "L2"}
    for unit in payload["units"].values():
        assert set(unit) == {"label", "posterior", "entropy", "n_labels", "n_raters"}
        assert (unit["n_labels"], unit["n_raters"]) == (2, 2)
        assert set(unit["posterior"]) == {"X", "Y"}
        assert sum(unit["posterior"].values()) == pytest.approx(1.0)
    assert set(payload["raters"]) == {"a", "b"}
    assert set(payload["raters"]["a"]) == {"accuracy", "weight"}


def test_normalised_entropy_bounds():
    np.testing.assert_allclose(normalised_entropy(posterior=np.array([[1.0, 0, 0], [1 / 3, 1 / 3, 1 / 3]])), [0.0, 1.0])


def test_dawid_skene_config_is_validated():
    with pytest.raises(ValueError, match="smoothing"):
        DawidSkeneConfig(smoothing=-1)
    with pytest.raises(ValueError, match="tolerance"):
        DawidSkeneConfig(tolerance=0)
    with pytest.raises(ValueError, match="max_iterations"):
        DawidSkeneConfig(max_iterations=0)
