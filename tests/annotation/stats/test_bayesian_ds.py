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
from annotation.stats.simulation import (
    DENSE,
    DENSE_HARD,
    FEW_CONCEPTS,
    HIGHLY_AMBIGUOUS,
    SPARSE,
    SPARSE_MANY_RATERS,
    score,
    simulate,
)
from annotation.stats.tables import ratings_from_rows


def _pooled_scores(*, regime, method, seeds=(20, 21, 22)):
    """Scores over the latents of three draws: ECE over 10 bins on one 300-latent draw is biased upward by
    ~0.04 even for the true generative model, so a bound on one draw would test the sample size."""
    posteriors, truth, ambiguous = [], [], []
    for seed in seeds:
        simulation = simulate(regime=regime, seed=seed)
        result = consensus_fit(
            method=method, ratings=simulation.ratings, weights=simulation.weights, parents=simulation.parents
        )
        posteriors.append(result.posterior)
        truth.append(simulation.truth)
        ambiguous.append(simulation.ambiguous)
    return score(posterior=np.concatenate(posteriors), truth=np.concatenate(truth), ambiguous=np.concatenate(ambiguous))


def test_bayesian_ds_is_calibrated_on_the_sparse_calibration_round():
    # Issue 9: a few hundred latents, six raters of mixed skill confusing siblings, 3 labels per latent,
    # 20 concepts in a two-level rubric, 20 % mixed latents. The 1979 MLE scores ECE ~0.18 here.
    ours = _pooled_scores(regime=SPARSE, method="bayesian-ds")
    majority = _pooled_scores(regime=SPARSE, method="majority")
    maximum_likelihood = _pooled_scores(regime=SPARSE, method="dawid-skene")
    print(
        f"\nsparse: bayesian-ds acc {ours.accuracy:.3f} ECE {ours.ece:.3f}; majority acc {majority.accuracy:.3f} "
        f"ECE {majority.ece:.3f}; dawid-skene ECE {maximum_likelihood.ece:.3f}"
    )
    assert ours.ece <= 0.05
    assert ours.accuracy >= majority.accuracy + 0.01
    assert maximum_likelihood.ece > 0.1  # the failure issue 9 reports, still there in the baseline
    assert ours.entropy_ambiguous >= 1.3 * ours.entropy_clear


def test_bayesian_ds_separates_spammer_and_confuser_on_dense_rounds():
    ours = _pooled_scores(regime=DENSE, method="bayesian-ds")
    assert ours.accuracy >= 0.88 and ours.ece <= 0.05
    assert ours.entropy_ambiguous >= 1.3 * ours.entropy_clear


@pytest.mark.parametrize(
    "regime", [DENSE_HARD, SPARSE_MANY_RATERS, HIGHLY_AMBIGUOUS, FEW_CONCEPTS], ids=lambda r: r.name
)
def test_bayesian_ds_calibration_holds_across_regimes(regime):
    # The dense round with weaker raters (majority ~0.84); more raters with skewed workloads plus a spammer
    # and a confuser; 40 % mixed latents; 8 concepts with only 2 labels per latent. Bounds a little looser than the sparse round's, always better than the votes.
    ours = _pooled_scores(regime=regime, method="bayesian-ds")
    majority = _pooled_scores(regime=regime, method="majority")
    assert ours.ece <= 0.08 and ours.ece < majority.ece
    assert ours.accuracy >= majority.accuracy
    assert ours.brier < majority.brier and ours.log_loss < majority.log_loss


def test_rater_posterior_follows_the_number_of_judgments():
    # Few judgments → the rater's confusion stays near the shared structure; many → their own pattern.
    simulation = simulate(regime=DENSE, seed=4)
    result = consensus_fit(method="bayesian-ds", ratings=simulation.ratings, parents=simulation.parents)
    kinds = dict(zip(result.raters, simulation.rater_kind, strict=False))
    accuracy = dict(zip(result.raters, result.rater_accuracy, strict=False))
    spammer = next(rater for rater, kind in kinds.items() if kind == "spammer")
    best = result.raters[0]  # the first ordinary rater is the most accurate (0.9)
    assert accuracy[spammer] < 0.25
    assert accuracy[best] > 0.75


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
    with pytest.raises(ValueError, match="relaxation"):
        BayesianDawidSkeneConfig(relaxation=2.0)


def test_bayesian_ds_single_label_and_single_unit():
    ratings = ratings_from_rows(units=["u", "u"], raters=["a", "b"], values=["X", "X"])
    result = bayesian_dawid_skene(ratings=ratings)
    np.testing.assert_allclose(result.posterior, [[1.0]])
    assert result.to_json()["units"]["u"]["n_raters"] == 2


def test_unit_blocks_do_not_change_either_fit(monkeypatch):
    # Both fits stream the units in cache-sized blocks (linear cost at millions of judgments); where the
    # blocks fall must not matter. 7 units per block puts boundaries everywhere in a 300-latent round.
    from annotation.stats import consensus

    simulation = simulate(regime=SPARSE, seed=8)
    whole = {
        method: consensus_fit(method=method, ratings=simulation.ratings, parents=simulation.parents)
        for method in ("dawid-skene", "bayesian-ds")
    }
    monkeypatch.setattr(consensus, "_BLOCK_UNITS", 7)
    for method, expected in whole.items():
        blocked = consensus_fit(method=method, ratings=simulation.ratings, parents=simulation.parents)
        assert blocked.iterations == expected.iterations
        np.testing.assert_allclose(
            blocked.posterior, expected.posterior, atol=1e-5 if method == "bayesian-ds" else 1e-12
        )


def test_bayesian_ds_unit_with_hundreds_of_judgments():
    # 400 judgments on one latent: every class's joint probability is below e^-87 (not a normal float32), so
    # the E-step must shift that row by its maximum; a 240–160 split is overwhelming evidence for A.
    raters = [f"r{index}" for index in range(400)]
    units, who, values = [], [], []
    for index, rater in enumerate(raters):
        units.append("big")
        who.append(rater)
        values.append("A" if index < 240 else "B")
    for index in range(40):  # small latents, three judgments each, so that the raters are estimated
        for rater in raters[index * 3 : index * 3 + 3]:
            units.append(f"u{index}")
            who.append(rater)
            values.append("A" if index % 2 else "B")
    result = bayesian_dawid_skene(ratings=ratings_from_rows(units=units, raters=who, values=values))
    assert np.isfinite(result.posterior).all()
    np.testing.assert_allclose(result.posterior.sum(axis=1), 1.0, atol=1e-9)
    big = result.units.index("big")
    assert result.labels[int(np.argmax(result.posterior[big]))] == "A"
    assert result.posterior[big].max() > 0.999


def test_bayesian_ds_over_relaxation_keeps_the_fixed_point():
    # relaxation only changes the path: run to a tight tolerance, plain and over-relaxed fits must agree.
    simulation = simulate(regime=DENSE_HARD, seed=31)
    fits = [
        bayesian_dawid_skene(
            ratings=simulation.ratings,
            parents=simulation.parents,
            config=BayesianDawidSkeneConfig(
                relaxation=relaxation, relaxation_min_judgments=0, tolerance=1e-6, max_iterations=2000
            ),
        )
        for relaxation in (1.0, 1.5)
    ]
    assert all(fit.converged for fit in fits)
    assert fits[1].iterations < fits[0].iterations
    np.testing.assert_allclose(fits[1].posterior, fits[0].posterior, atol=1e-4)


def _swapped_rows(result, rater: int) -> tuple[float, float]:
    """Mean over the four groups and both directions of rater's P(says the swapped code) and P(says the truth)
    for the first two concepts of every group, the pair a systematic confuser swaps (~8 judgments a row)."""
    swapped, kept = [], []
    for group in range(4):
        first, second = (result.labels.index(f"G{group:02d}.C0{c}") for c in (0, 1))
        for a, b in ((first, second), (second, first)):
            swapped.append(result.confusion[rater, a, b])
            kept.append(result.confusion[rater, a, a])
    return float(np.mean(swapped)), float(np.mean(kept))


def test_dense_round_reaches_the_accuracy_goal_and_learns_the_confuser_s_own_rows():
    # Issue 9's dense regime (majority ~0.84): ≥ 0.88 needs the systematic confuser's own confusion rows (a
    # one-coin fit with the true accuracies scores 0.879 there). Pooled over 20 draws: one 600-latent draw's
    # accuracy varies by ±0.012 (sd over 40 draws).
    ours = _pooled_scores(regime=DENSE_HARD, method="bayesian-ds", seeds=range(20, 40))
    majority = _pooled_scores(regime=DENSE_HARD, method="majority", seeds=range(20, 40))
    assert ours.accuracy >= 0.88 and ours.accuracy >= majority.accuracy + 0.03
    assert ours.ece <= 0.05
    simulation = simulate(regime=DENSE_HARD, seed=20)
    result = consensus_fit(method="bayesian-ds", ratings=simulation.ratings, parents=simulation.parents)
    swapped, kept = _swapped_rows(result, simulation.rater_kind.index("confuser"))
    assert swapped > 2 * kept  # it swaps 90 % of the time
    swapped, kept = _swapped_rows(result, simulation.rater_kind.index("rater"))
    assert kept > 10 * swapped


def test_learnt_row_strength_is_what_separates_the_confuser():
    simulation = simulate(regime=DENSE_HARD, seed=21)
    fixed = BayesianDawidSkeneConfig(learn_row_strength=False)
    learnt = consensus_fit(method="bayesian-ds", ratings=simulation.ratings, parents=simulation.parents)
    plain = bayesian_dawid_skene(ratings=simulation.ratings, parents=simulation.parents, config=fixed)
    confuser = simulation.rater_kind.index("confuser")
    swapped, kept = _swapped_rows(plain, confuser)
    assert swapped < kept  # shrunk toward the one-coin structure at s = 50
    swapped, kept = _swapped_rows(learnt, confuser)
    assert swapped > 2 * kept
    with pytest.raises(ValueError, match="row_strength_bounds"):
        BayesianDawidSkeneConfig(row_strength_bounds=(0.0, 10.0))
