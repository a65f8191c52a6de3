"""Krippendorff's alpha, Fleiss' and Cohen's kappa and per-unit agreement against published values."""

from __future__ import annotations

import csv
from pathlib import Path

import krippendorff
import numpy as np
import pytest

from annotation.stats.agreement import (
    _AlphaParts,
    _bootstrap_multiplicities,
    _fixed_distances,
    alpha_from_coincidences,
    cohen_kappa_from_labels,
    cohen_kappa_from_table,
    fleiss_kappa,
    hierarchical_distances,
    krippendorff_alpha,
    pairwise_cohen_kappa,
    percent_agreement,
    unit_agreement,
)
from annotation.stats.tables import (
    count_matrix_from_reliability,
    ratings_from_rows,
    read_long_csv,
    reliability_matrix,
    reliability_matrix_from_values,
)

FIXTURES = Path(__file__).parent / "fixtures"

# Two branches of a small rubric: siblings are 2 edges apart, cousins 4 (the diameter).
RUBRIC = {"CARDIO": None, "PULM": None, "CHF": "CARDIO", "MI": "CARDIO", "PNA": "PULM", "COPD": "PULM"}


def _krippendorff_2011(numeric: bool = True):
    return reliability_matrix(ratings=read_long_csv(path=FIXTURES / "krippendorff_2011.csv", numeric=numeric))


def _matrix(rows: list[tuple[str, str, str]]):
    units, raters, values = zip(*rows, strict=False)
    return reliability_matrix(ratings=ratings_from_rows(units=units, raters=raters, values=values))


def _simulated(n_units: int, n_raters: int, agree: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, size=n_units)
    noise = rng.integers(0, 4, size=(n_units, n_raters))
    values = np.where(rng.random((n_units, n_raters)) < agree, truth[:, None], noise)
    return values.astype(float)


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743421), ("ordinal", 0.815388), ("interval", 0.849107), ("ratio", 0.797403)],
)
def test_krippendorff_alpha_matches_krippendorff_2011(level, published):
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", worked example with missing data.
    result = krippendorff_alpha(matrix=_krippendorff_2011(), level=level, n_draws=0)
    assert result.alpha == pytest.approx(published, abs=5e-7)
    assert (result.n_units, result.n_raters, result.n_pairable) == (11, 4, 40)  # unit 12 is unpairable; n = 40
    assert result.ci is None


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_own_coincidence_alpha_agrees_with_the_package(level):
    # The bootstrap uses our coincidence arithmetic; it must equal the package on the point estimate.
    matrix = reliability_matrix_from_values(values=_simulated(60, 5, 0.6, seed=3))
    counts = count_matrix_from_reliability(matrix=matrix).counts
    counts = counts[counts.sum(axis=1) >= 2]
    distances = None if level == "ordinal" else _fixed_distances(level=level, categories=matrix.categories, parent=None)
    parts = _AlphaParts(counts=counts, level=level, distances=distances)
    ours = parts.alphas(multiplicity=np.ones((1, counts.shape[0])))[0]
    package = krippendorff.alpha(reliability_data=matrix.values.T, level_of_measurement=level)
    assert ours == pytest.approx(package, abs=1e-12)


def test_hierarchical_alpha_equals_nominal_on_a_flat_tree():
    matrix = _krippendorff_2011(numeric=False)
    flat = {code: None for code in matrix.categories}
    hierarchical = krippendorff_alpha(matrix=matrix, level="hierarchical", parent=flat, n_draws=0)
    assert hierarchical.alpha == pytest.approx(0.743421, abs=5e-7)
    counts = count_matrix_from_reliability(matrix=matrix).counts
    package = krippendorff.alpha(value_counts=counts, level_of_measurement="nominal")
    assert hierarchical.alpha == pytest.approx(package, abs=1e-12)


def test_hierarchical_distances_are_tree_edges_over_the_diameter():
    distances = hierarchical_distances(categories=["CHF", "MI", "PNA", "CARDIO"], parent=RUBRIC)
    np.testing.assert_allclose(distances[0], [0.0, 0.5, 1.0, 0.25])


def test_hierarchical_alpha_counts_sibling_disagreement_less_than_distant():
    agreeing = [(f"a{i}", r, code) for i, code in enumerate(["CHF", "MI", "PNA", "COPD"]) for r in ("x", "y")]
    siblings = agreeing + [("d1", "x", "CHF"), ("d1", "y", "MI"), ("d2", "x", "PNA"), ("d2", "y", "COPD")]
    distant = agreeing + [("d1", "x", "CHF"), ("d1", "y", "PNA"), ("d2", "x", "MI"), ("d2", "y", "COPD")]
    nominal_siblings = krippendorff_alpha(matrix=_matrix(siblings), level="nominal", n_draws=0).alpha
    nominal_distant = krippendorff_alpha(matrix=_matrix(distant), level="nominal", n_draws=0).alpha
    assert nominal_siblings == pytest.approx(nominal_distant)  # same marginals: nominal cannot tell them apart
    near = krippendorff_alpha(matrix=_matrix(siblings), level="hierarchical", parent=RUBRIC, n_draws=0).alpha
    far = krippendorff_alpha(matrix=_matrix(distant), level="hierarchical", parent=RUBRIC, n_draws=0).alpha
    assert near > far
    assert far == pytest.approx(
        alpha_from_coincidences(
            counts=count_matrix_from_reliability(matrix=_matrix(distant)).counts,
            distances=hierarchical_distances(categories=_matrix(distant).categories, parent=RUBRIC),
        )
    )


def test_hierarchical_alpha_needs_the_tree_and_known_codes():
    matrix = _matrix([("u", "x", "CHF"), ("u", "y", "XYZ")])
    with pytest.raises(ValueError, match="parent mapping"):
        krippendorff_alpha(matrix=matrix, level="hierarchical", n_draws=0)
    with pytest.raises(ValueError, match="not in the rubric tree: XYZ"):
        krippendorff_alpha(matrix=matrix, level="hierarchical", parent=RUBRIC, n_draws=0)
    with pytest.raises(ValueError, match="cycle"):
        hierarchical_distances(categories=["A"], parent={"A": "B", "B": "A"})


def test_identical_raters_have_alpha_one():
    values = np.repeat(np.arange(20, dtype=float)[:, None] % 4, 3, axis=1)
    result = krippendorff_alpha(matrix=reliability_matrix_from_values(values=values), level="nominal", n_draws=200)
    assert result.alpha == 1.0
    assert result.ci == (1.0, 1.0)


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_units():
    small = krippendorff_alpha(
        matrix=reliability_matrix_from_values(values=_simulated(40, 4, 0.7, seed=1)), level="nominal", seed=7
    )
    large = krippendorff_alpha(
        matrix=reliability_matrix_from_values(values=_simulated(2000, 4, 0.7, seed=1)), level="nominal", seed=7
    )
    for result in (small, large):
        assert result.ci[0] <= result.alpha <= result.ci[1]
    assert large.ci[1] - large.ci[0] < (small.ci[1] - small.ci[0]) / 3


def test_bootstrap_is_seeded():
    matrix = reliability_matrix_from_values(values=_simulated(50, 3, 0.6, seed=2))
    assert (
        krippendorff_alpha(matrix=matrix, level="ordinal", seed=5).ci
        == krippendorff_alpha(matrix=matrix, level="ordinal", seed=5).ci
    )


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_vectorised_bootstrap_equals_package_on_each_resample(level):
    # Every draw's weighted sum must equal the package run on the resampled units themselves.
    matrix = reliability_matrix_from_values(values=_simulated(30, 4, 0.6, seed=4) + 1)
    counts = count_matrix_from_reliability(matrix=matrix).counts
    counts = counts[counts.sum(axis=1) >= 2]
    distances = None if level == "ordinal" else _fixed_distances(level=level, categories=matrix.categories, parent=None)
    multiplicity = _bootstrap_multiplicities(rng=np.random.default_rng(0), n_units=counts.shape[0], n_draws=5)
    ours = _AlphaParts(counts=counts, level=level, distances=distances).alphas(multiplicity=multiplicity)
    domain = np.asarray(matrix.categories)
    for draw, weights in enumerate(multiplicity.astype(int)):
        resampled = np.repeat(counts, weights, axis=0)
        expected = krippendorff.alpha(value_counts=resampled, value_domain=domain, level_of_measurement=level)
        assert ours[draw] == pytest.approx(expected, abs=1e-10)


def test_alpha_rejects_bad_input():
    matrix = _krippendorff_2011()
    with pytest.raises(ValueError, match="unknown level"):
        krippendorff_alpha(matrix=matrix, level="cardinal")
    with pytest.raises(ValueError, match="numeric"):
        krippendorff_alpha(matrix=_krippendorff_2011(numeric=False), level="interval")


@pytest.mark.parametrize(
    ("rows", "reason", "n_units"),
    [
        ([("u1", "a", "X"), ("u2", "b", "Y")], "nothing is pairable", 0),
        ([("u1", "a", "X"), ("u1", "b", "Y"), ("u2", "a", "X")], "only one unit has two or more values", 1),
        ([("u1", "a", "X"), ("u1", "b", "X"), ("u2", "a", "X"), ("u2", "b", "X")], "no variation", 2),
    ],
)
def test_alpha_says_undefined_instead_of_zero(rows, reason, n_units):
    # A single disagreeing unit used to give alpha 0.0 with a (0, 0) interval, which reads like a measurement.
    result = krippendorff_alpha(matrix=_matrix(rows), level="nominal", n_draws=200)
    assert not result.defined and reason in result.reason
    assert np.isnan(result.alpha) and result.ci is None and result.n_units == n_units


def test_alpha_over_two_units_is_defined():
    result = krippendorff_alpha(
        matrix=_matrix([("u1", "a", "X"), ("u1", "b", "Y"), ("u2", "a", "X"), ("u2", "b", "X")]),
        level="nominal",
        n_draws=0,
    )
    assert result.defined and result.reason is None and np.isfinite(result.alpha)


def test_fleiss_kappa_matches_wikipedia_example():
    # Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories.
    counts = np.loadtxt(FIXTURES / "fleiss_wikipedia_counts.csv", delimiter=",", skiprows=1)[:, 1:]
    result = fleiss_kappa(counts=counts)
    assert result.observed_agreement == pytest.approx(0.378022, abs=5e-7)
    assert result.expected_agreement == pytest.approx(0.212755, abs=5e-7)
    assert result.kappa == pytest.approx(0.209931, abs=5e-7)


def test_fleiss_kappa_matches_fleiss_1971_diagnoses():
    # Fleiss (1971), 30 patients × 6 psychiatrists, 5 diagnoses; R irr::kappam.fleiss gives 0.4302445.
    with (FIXTURES / "fleiss_1971_diagnoses.csv").open() as handle:
        rows = [[int(value) for value in row[1:]] for row in list(csv.reader(handle))[1:]]
    counts = np.array([[row.count(category) for category in range(1, 6)] for row in rows])
    assert fleiss_kappa(counts=counts).kappa == pytest.approx(0.4302445, abs=5e-8)


def test_fleiss_kappa_needs_equal_ratings_per_unit():
    with pytest.raises(ValueError, match=r"most rows have 3 while row 1 has 2 \(missing ratings\?\)"):
        fleiss_kappa(counts=[[2, 1], [1, 1], [0, 3]])
    with pytest.raises(ValueError, match="at least two ratings per unit; every row has 1"):
        fleiss_kappa(counts=[[1, 0], [0, 1]])


def test_fleiss_kappa_says_undefined_for_one_unit_or_one_category():
    one_unit = fleiss_kappa(counts=[[2, 1]])
    assert not one_unit.defined and "one unit" in one_unit.reason and np.isnan(one_unit.kappa)
    one_category = fleiss_kappa(counts=[[3, 0], [3, 0]])
    assert not one_category.defined and "same category" in one_category.reason


def test_cohen_kappa_two_by_two():
    # Standard textbook 2×2 example (Wikipedia, "Cohen's kappa"): 50 items, po 0.70, pe 0.50 → 0.40.
    result = cohen_kappa_from_table(table=[[20, 5], [10, 15]])
    assert result.kappa == pytest.approx(0.40)
    assert (result.observed_agreement, result.expected_agreement) == pytest.approx((0.70, 0.50))


def test_cohen_kappa_three_by_three_with_fleiss_cohen_everitt_standard_error():
    # Oracle README: [[0,4,1],[0,8,0],[0,1,5]] → 0.4842, asymptotic SE 0.1380 (Fleiss, Cohen & Everitt 1969),
    # 95% CI 0.2137–0.7547.
    result = cohen_kappa_from_table(table=[[0, 4, 1], [0, 8, 0], [0, 1, 5]])
    assert result.kappa == pytest.approx(0.4842, abs=5e-5)
    assert result.standard_error == pytest.approx(0.1380, abs=5e-5)
    assert result.ci == pytest.approx((0.2137, 0.7547), abs=5e-5)


def test_cohen_kappa_from_labels_equals_the_table():
    first = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15 + [None]
    second = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15 + ["y"]
    result = cohen_kappa_from_labels(first=first, second=second)
    assert result.kappa == pytest.approx(0.40) and result.n == 50


def test_cohen_kappa_is_nan_when_undefined():
    one_category = cohen_kappa_from_table(table=[[4, 0], [0, 0]])
    assert np.isnan(one_category.kappa) and not one_category.defined and "same category" in one_category.reason
    one_item = cohen_kappa_from_labels(first=["y"], second=["n"])
    assert not one_item.defined and one_item.reason == "one item: kappa needs at least two"
    assert np.isnan(one_item.kappa) and all(np.isnan(one_item.ci))


def test_pairwise_cohen_kappa_equals_each_pair_on_common_units():
    matrix = _krippendorff_2011(numeric=False)
    pairwise = pairwise_cohen_kappa(matrix=matrix)
    codes = matrix.codes
    for a in range(len(matrix.raters)):
        assert np.isnan(pairwise.kappa[a, a])
        for b in range(a + 1, len(matrix.raters)):
            first = [None if np.isnan(value) else value for value in codes[:, a]]
            second = [None if np.isnan(value) else value for value in codes[:, b]]
            expected = cohen_kappa_from_labels(first=first, second=second)
            assert pairwise.n_common[a, b] == expected.n
            assert pairwise.kappa[a, b] == pytest.approx(expected.kappa)
            assert pairwise.kappa[b, a] == pytest.approx(expected.kappa)


def test_percent_and_unit_agreement():
    counts = np.array([[3, 0], [2, 1], [1, 0]])
    pooled = percent_agreement(counts=counts)
    assert pooled.value == pytest.approx(8 / 12) and pooled.n_pairs == 6 and pooled.n_units == 2
    per_unit = unit_agreement(counts=counts)
    np.testing.assert_allclose(per_unit.agreement, [1.0, 1 / 3, np.nan])
    third = np.array([2 / 3, 1 / 3])
    np.testing.assert_allclose(per_unit.entropy, [0.0, -(third * np.log(third)).sum() / np.log(2), 0.0])
