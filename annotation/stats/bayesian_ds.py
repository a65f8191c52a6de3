"""Bayesian Dawid–Skene (`bayesian-ds`): Dirichlet priors shrunk toward shared rater structure, fitted by mean-field VB.

Model (K labels, R raters, units i, judgments (i, r, l)):
    π ~ Dirichlet(α·1)                      class proportions
    θ_rk ~ Dirichlet(s · m_rk)               rater r's confusion row for true label k (over given labels l)
    z_i ~ Categorical(π)                     true label of unit i
    l | z_i = k, r ~ Categorical(θ_rk)        every judgment, repeats included (as in Dawid & Skene 1979)

The prior mean m_rk is the shared structure every rater is shrunk toward:
    m_rk[k] = a_r                            the rater's one-coin accuracy
    m_rk[l] = (1 − a_r) · c_k[l], l ≠ k      the pooled confusion: where every rater's errors on k go
a_r is the rater's expected share of correct judgments shrunk toward the pooled accuracy (Beta prior
of `accuracy_strength` pseudo-judgments); c_k is the pooled off-diagonal confusion of true label k
shrunk toward the rubric tree (`pooled_strength` pseudo-errors spread so that a share ρ goes to
*related* codes — siblings, parent, children — and 1 − ρ to the rest; ρ is itself estimated from all
raters' errors). Without a rubric tree c_k shrinks toward uniform. a_r, the pooled accuracy, c_k and ρ
are re-estimated at every iteration from the expected counts (empirical Bayes).

Fit: mean-field variational Bayes, q(z) q(π) q(θ). Each E-step uses E[log θ] = ψ(γ) − ψ(Σγ) instead of
log E[θ], so a rater with few judgments (small γ) carries a wide posterior and their votes move a unit's
posterior less; that is what keeps soft labels from collapsing on sparse rounds (~3 judgments per latent,
~20 concepts) where the 1979 MLE has ~K² free parameters per rater and becomes certain.

Rater weights (test–retest and learnability, `reliability.combine_weights`, in (0, 1]) enter as the
initialisation only: the first q(z) is the weighted vote over all judgments (as for `dawid-skene`).
They do not enter the prior: a weight is a kappa-based score on another scale, and the judgments
themselves estimate each rater's confusion; with few judgments the shrinkage toward the pooled
structure, not the weight, decides.

Cost per iteration: two sparse (units × raters·K) by (·, K) products and digammas over the
(raters, K, K) table, linear in the number of judgments; no (units, raters, K) array is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import digamma

from annotation.stats.consensus import (
    ConsensusResult,
    normalised_entropy,
    unit_counts,
    vote_posterior,
    weight_vector,
)
from annotation.stats.tables import Category, Ratings


@dataclass(frozen=True)
class BayesianDawidSkeneConfig:
    """Settings of `bayesian_dawid_skene`; the defaults were chosen on the simulations of
    `annotation.stats.simulation` (bench/consensus_calibration.py prints their calibration)."""

    class_concentration: float = 1.0
    """Dirichlet α on every class proportion π_k. 1 is uniform over proportions: with ~20 concepts
    and a few hundred latents a concept nobody used keeps a small, non-zero prior."""
    row_strength: float = 8.0
    """s: pseudo-judgments in each rater's confusion-row prior Dirichlet(s·m_rk). A row needs more real
    judgments than this before the rater's own pattern outweighs the shared structure; a sparse round gives
    each rater ~5–15 judgments per concept, so the shared structure dominates there and a dense one
    (hundreds per row) learns each rater's own confusions, systematic confusers included."""
    accuracy_strength: float = 10.0
    """Beta pseudo-judgments shrinking each rater's one-coin accuracy a_r toward the pooled accuracy: a
    rater with 10 judgments is half their own, half the pool."""
    pooled_strength: float = 10.0
    """Pseudo-errors shrinking the pooled confusion of each true concept toward the rubric structure (or
    uniform): each concept receives ~K·(1 − accuracy)·judgments/K errors, few on sparse rounds."""
    plugin: bool = True
    tolerance: float = 1e-6
    """Stop when no posterior entry moves by more than this between iterations."""
    max_iterations: int = 200
    """Upper bound on iterations; `converged` tells whether the tolerance was reached first."""

    def __post_init__(self) -> None:
        for name in ("class_concentration", "row_strength", "accuracy_strength", "pooled_strength", "tolerance"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number")
        if self.max_iterations < 1:
            raise ValueError("max_iterations must be at least 1")


def related_mask(*, labels: Sequence[Category], parents: Mapping[str, str | None] | None) -> np.ndarray:
    """(K, K) boolean: True where two different labels are siblings (same non-null parent) or parent and child."""
    n_labels = len(labels)
    mask = np.zeros((n_labels, n_labels), dtype=bool)
    if not parents:
        return mask
    codes = [str(label) for label in labels]
    parent = [parents.get(code) for code in codes]
    for a in range(n_labels):
        for b in range(n_labels):
            if a == b:
                continue
            siblings = parent[a] is not None and parent[a] == parent[b]
            mask[a, b] = siblings or parent[a] == codes[b] or parent[b] == codes[a]
    return mask


class _SharedStructure:
    """The empirical-Bayes prior means m[r, k, l] rebuilt from expected counts at every iteration."""

    def __init__(self, *, related: np.ndarray, config: BayesianDawidSkeneConfig) -> None:
        self.config = config
        n_labels = related.shape[0]
        off_diagonal = ~np.eye(n_labels, dtype=bool)
        self.related = related & off_diagonal
        self.unrelated = ~related & off_diagonal
        self.has_tree = bool(self.related.any())

    def _rubric_prior(self, *, off: np.ndarray) -> np.ndarray:
        """(K, K) off-diagonal error distribution per true label: share ρ to related codes, the rest uniform."""
        n_labels = off.shape[0]
        if n_labels < 2:
            return np.zeros((n_labels, n_labels))
        uniform = (~np.eye(n_labels, dtype=bool)) / (n_labels - 1)
        if not self.has_tree:
            return uniform
        # ρ: share of all raters' errors that land on related codes; one pseudo-error each way keeps it off 0 and 1.
        rho = (off[self.related].sum() + 1.0) / (off.sum() + 2.0)
        n_related = self.related.sum(axis=1, keepdims=True)
        n_unrelated = self.unrelated.sum(axis=1, keepdims=True)
        prior = (rho * self.related / np.maximum(n_related, 1)
                 + (1 - rho) * self.unrelated / np.maximum(n_unrelated, 1))
        # A code with no related (or no unrelated) code puts that share on the others.
        return prior / np.maximum(prior.sum(axis=1, keepdims=True), 1e-300)

    def prior_counts(self, *, counts: np.ndarray) -> np.ndarray:
        """(R, K, K) Dirichlet parameters s·m from counts[r, true k, given l]."""
        config = self.config
        n_labels = counts.shape[1]
        diagonal = np.einsum("rkk->r", counts)
        total = counts.sum(axis=(1, 2))
        pooled_accuracy = (diagonal.sum() + 1.0) / (total.sum() + 2.0)
        accuracy = (diagonal + config.accuracy_strength * pooled_accuracy) / (total + config.accuracy_strength)
        off = counts.sum(axis=0)
        off[np.diag_indices(n_labels)] = 0.0
        pooled = off + config.pooled_strength * self._rubric_prior(off=off)
        pooled /= np.maximum(pooled.sum(axis=1, keepdims=True), 1e-300)
        mean = (1 - accuracy)[:, None, None] * pooled[None, :, :]
        mean[:, np.arange(n_labels), np.arange(n_labels)] = accuracy[:, None]
        if n_labels == 1:
            mean[:] = 1.0
        return config.row_strength * mean


def bayesian_dawid_skene(
    *,
    ratings: Ratings,
    weights: Mapping[str, float] | None = None,
    parents: Mapping[str, str | None] | None = None,
    config: BayesianDawidSkeneConfig = BayesianDawidSkeneConfig(),
) -> ConsensusResult:
    """Posterior per unit under the model of this module; rater accuracy and confusion are posterior means.

    `parents` maps a label (concept code) to its parent code in the rubric tree (None for a root); codes
    missing from it have no related codes. `weights` (rater → (0, ∞)) only initialise, see the module.
    """
    n_units, n_raters, n_labels = len(ratings.units), len(ratings.raters), len(ratings.categories)
    weight = weight_vector(ratings=ratings, weights=weights)
    posterior = vote_posterior(ratings=ratings, weight=weight, include_repeats=True)
    structure = _SharedStructure(related=related_mask(labels=ratings.categories, parents=parents), config=config)

    # given[(r·K + l), i]: how many times rater r said l on unit i. Both VB steps are products with it.
    given = sparse.csr_matrix(
        (np.ones(ratings.n_judgments), (ratings.rater_index * n_labels + ratings.category_index, ratings.unit_index)),
        shape=(n_raters * n_labels, n_units),
    )
    given.sum_duplicates()
    given_by_unit = given.T.tocsr()

    converged = False
    iteration = 0
    for iteration in range(1, config.max_iterations + 1):
        counts, expected_log_confusion, class_shape = _parameters(
            given=given, posterior=posterior, structure=structure, n_raters=n_raters, config=config)
        expected_log_prior = digamma(class_shape) - digamma(class_shape.sum())
        # (R·L, K) layout: row r·K + l holds E[log θ_r[k, l]] for every true k.
        log_table = np.ascontiguousarray(expected_log_confusion.transpose(0, 2, 1)).reshape(n_raters * n_labels,
                                                                                             n_labels)
        joint = np.ascontiguousarray((given_by_unit @ log_table).T)  # labels × units: fast short-axis reductions
        joint += expected_log_prior[:, None]
        joint -= joint.max(axis=0)
        np.exp(joint, out=joint)
        joint /= joint.sum(axis=0)
        change = float(np.abs(joint.T - posterior).max())
        posterior = joint.T
        if change <= config.tolerance:
            converged = True
            break

    posterior = np.ascontiguousarray(posterior)
    counts, _, class_shape = _parameters(
        given=given, posterior=posterior, structure=structure, n_raters=n_raters, config=config)
    shape = structure.prior_counts(counts=counts) + counts
    confusion = shape / shape.sum(axis=2, keepdims=True)
    priors = class_shape / class_shape.sum()
    n_labels_per_unit, n_raters_per_unit = unit_counts(ratings=ratings)
    return ConsensusResult(
        method="bayesian-ds",
        units=ratings.units,
        labels=ratings.categories,
        raters=ratings.raters,
        posterior=posterior,
        entropy=normalised_entropy(posterior=posterior),
        rater_accuracy=np.einsum("k,rkk->r", priors, confusion),
        rater_weight=weight,
        priors=priors,
        confusion=confusion,
        iterations=iteration,
        converged=converged,
        n_labels=n_labels_per_unit,
        n_raters=n_raters_per_unit,
    )


def _parameters(
    *,
    given: sparse.csr_matrix,
    posterior: np.ndarray,
    structure: _SharedStructure,
    n_raters: int,
    config: BayesianDawidSkeneConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VB update of q(θ) and q(π): expected counts (R, true, given), E[log θ] (R, true, given), q(π)'s shape."""
    n_labels = posterior.shape[1]
    # counts[r, k, l]: expected number of times rater r said l on units whose truth is k.
    counts = np.asarray(given @ posterior).reshape(n_raters, n_labels, n_labels).transpose(0, 2, 1)
    shape = structure.prior_counts(counts=counts) + counts
    if config.plugin:
        expected_log_confusion = np.log(shape) - np.log(shape.sum(axis=2, keepdims=True))
    else:
        expected_log_confusion = digamma(shape) - digamma(shape.sum(axis=2, keepdims=True))
    class_shape = config.class_concentration + posterior.sum(axis=0)
    return counts, expected_log_confusion, class_shape
