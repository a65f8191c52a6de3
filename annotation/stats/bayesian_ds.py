"""Bayesian Dawid–Skene (`bayesian-ds`): Dirichlet priors shrunk toward shared rater structure, variational fit.

Model (K labels, R raters, units i, judgments (i, r, l)):
    π ~ Dirichlet(α·1)                       class proportions
    θ_rk ~ Dirichlet(s_r · m_rk)              rater r's confusion row for true label k (over given labels l)
    z_i ~ Categorical(π)                      true label of unit i
    unit i is *mixed* with probability ε      (fixed, `ambiguous_share`)
    clear unit:  l | z_i = k, r ~ Categorical(θ_rk)
    mixed unit:  l | z_i = k, r ~ Σ_p M[k, p] θ_rp, M[k, k] = w, M[k, p] = (1 − w)·c_k[p]
Every judgment is an observation, repeats included (as in Dawid & Skene 1979).

The prior mean m_rk is the shared structure every rater is shrunk toward:
    m_rk[k] = a_r                             the rater's one-coin accuracy
    m_rk[l] = (1 − a_r) · c_k[l], l ≠ k       the pooled confusion: where every rater's errors on k go
a_r is the rater's expected share of correct judgments shrunk toward the pooled accuracy (Beta prior of
`accuracy_strength` pseudo-judgments); c_k is the pooled off-diagonal confusion of true label k shrunk
toward the rubric tree (`pooled_strength` pseudo-errors spread so that a share ρ goes to *related* codes —
siblings, parent, children — and 1 − ρ to the rest; ρ is the share of all raters' errors that land on
related codes). Without a rubric tree c_k shrinks toward uniform. a_r, the pooled accuracy, c_k and ρ
are re-estimated at every iteration from the expected counts (empirical Bayes).

s_r, how far rater r's own confusion may depart from that structure, is also set by empirical Bayes: the
value that makes r's expected counts most probable under the Dirichlet–multinomial (type-II maximum
likelihood, `learn_row_strength`). Raters who err the way everyone errs get a large s_r and are, in effect,
one-coin raters on the pooled confusion; a rater with a confusion of their own (a systematic confuser) gets a
small s_r, so their own rows are learnt and their swapped answers read as evidence for what they mean.

The mixed component is the latent that fires on two concepts (DESIGN: physicians split on it): raters
perceive the dominant concept with probability w, a confusable one otherwise, then judge as usual. It
tempers the evidence of a 2–1 or 1–1–1 split, which the plain model reads as near-certainty because it
believes every judgment is an independent look at one concept.

Fit: mean-field variational inference over q(z) q(θ) q(π), coordinate ascent. q(θ_rk) = Dirichlet(γ_rk)
with γ_rk = s_r·m_rk + expected counts of the unit posteriors (clear part only), so a rater with few
judgments stays near the shared structure; what is uncertain about such a rater is mostly their accuracy a_r,
which the Beta prior keeps near the pool's until their judgments outweigh its 30 pseudo-judgments. The E-step reads q(θ) through its
mean, log E[θ] — the posterior predictive probability of one more judgment — rather than E[log θ]
(`expectation`, which documents why and keeps the textbook choice available). Rater accuracy and
confusion in the result are posterior means.

Rater weights (test–retest and learnability, `reliability.combine_weights`, in (0, 1]) enter as the
initialisation only: the first q(z) is the weighted vote over all judgments (as for `dawid-skene`).
They do not enter the prior: a weight is a kappa-based score on another scale, the judgments themselves
estimate each rater's confusion, and with few judgments the shrinkage toward the pooled structure, not
the weight, decides.

Cost per iteration: two sparse products per block of units, (units, raters·K) × (raters·K, 2K) and its
transpose × (units, K), and O(R·K³) dense work, linear in the number of judgments; no (units, raters, K)
array is built (500k judgments: 9 iterations, 0.4 CPU s on one core; see docs/consensus.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import digamma, polygamma

from annotation.stats.consensus import (
    ConsensusResult,
    normalised_entropy,
    unit_blocks,
    unit_counts,
    vote_posterior,
    weight_vector,
)
from annotation.stats.tables import Category, Ratings

# exp of a log-probability below −87 is no longer a normal float32: rows whose total is below e^−60 are
# recomputed with their maximum subtracted, so every entry within e^−27 of a row's largest stays exact.
_SAFE_TOTAL = np.float32(np.exp(-60.0))

EXPECTATIONS = ("mean", "log")


@dataclass(frozen=True)
class BayesianDawidSkeneConfig:
    """Settings of `bayesian_dawid_skene`. The defaults were chosen on the regimes of
    `annotation.stats.simulation` (bench/consensus_calibration.py prints their calibration); see
    docs/consensus.md for the figures."""

    class_concentration: float = 1.0
    """Dirichlet α on every class proportion π_k. 1 is uniform over proportions: with ~20 concepts and a
    few hundred latents a concept nobody chose keeps a small, non-zero prior."""
    row_strength: float = 50.0
    """s_r: pseudo-judgments in rater r's confusion-row prior Dirichlet(s_r·m_rk), where every rater starts
    (and stays, with `learn_row_strength` off). A row needs about this many real judgments before the rater's
    own pattern outweighs the shared structure. As a fixed value for everyone, smaller ones (8, 20) made sparse
    rounds over-confident (ECE +0.02–0.04) and 50 could not learn a systematic confuser on a dense round
    (~8 judgments per row), hence the per-rater estimate."""
    learn_row_strength: bool = True
    """Re-estimate each rater's strength s_r by type-II maximum likelihood (empirical Bayes): the s that makes
    the rater's expected counts most probable under the Dirichlet–multinomial with mean m_r (one Newton step in
    log s per iteration, warm-started). A rater whose confusions follow the shared structure gets a large s_r
    (their rows *are* the structure: one-coin accuracy times the pooled confusion); a rater with a confusion of
    their own — a systematic confuser who says B for A — gets a small one, so the fit learns that rater's own
    rows however few raters behave so. On the dense-hard regime the confuser's s fell to ~1 and the ordinary
    raters' went to the upper bound; accuracy 0.871 → 0.884 and ECE 0.023 → 0.011 (docs/consensus.md).
    False keeps every s_r at `row_strength`."""
    row_strength_bounds: tuple[float, float] = (2.0, 1000.0)
    """Range of the learnt s_r. The lower bound keeps a rater's own row a posterior mean over at least two
    pseudo-judgments (below it one stray judgment would define the row); the upper one leaves a rater with
    thousands of judgments a few hundred per row that still count against the structure. Narrower ranges
    measured worse on the dense-hard regime (with the accuracy prior at 10: 5–500: 0.883, 10–500: 0.881,
    5–200: 0.882; 2–1000: 0.886)."""
    accuracy_strength: float = 30.0
    """Beta pseudo-judgments shrinking a rater's one-coin accuracy a_r toward the pooled accuracy: a rater
    with 30 judgments is half their own, half the pool. A calibration round gives each rater 6–20 judgments,
    from which an accuracy is known to ±0.1–0.2; with 10, who happened to sit on more unanimous latents
    decided 2–2–2 splits (one latent in 5 seeded walks of tests/annotation/test_routing_walk.py reached a top
    posterior of 0.82; 0.63 with 20; none of 12 with 30). On the bench regimes (≥ 100 judgments per rater)
    30 against 10 moved accuracy by −0.010 to +0.003 and ECE by −0.004 to +0.005. Learning it by empirical
    Bayes like s_r was tried and rejected: with 2 labels per latent the evidence favours the symmetric fixed
    point where every rater looks alike (8-concepts regime: accuracy 0.754 → 0.703, majority's)."""
    pooled_strength: float = 30.0
    """Pseudo-errors shrinking the pooled confusion c_k of each true concept toward the rubric structure (or
    uniform). A concept gets only a few dozen errors from all raters on a sparse round; 30 keeps c_k from
    copying them (3 gave ECE +0.02 on the sparse regimes)."""
    ambiguous_share: float = 0.5
    """ε: prior probability that a latent is *mixed* (see the module). Fixed, not learnt: with ~3 judgments
    per latent the share is not identifiable (EM drove it to ~0.015 on simulations with 20 % mixed latents)
    and the mixed component is what keeps split latents uncertain. 0 gives the plain Bayesian Dawid–Skene."""
    ambiguous_dominance: float = 0.6
    """w: on a mixed latent a rater perceives the true concept with probability w and a confusable one (drawn
    from c_k) otherwise. Simulated mixtures put 0.55–0.8 on the dominant concept; the lower end is used
    because over-confidence on split latents costs more calibration than under-confidence on clear ones."""
    expectation: str = "mean"
    """How the E-step reads q(θ): "mean" uses log E[θ] (the posterior predictive probability of a judgment);
    "log" uses E[log θ] = ψ(γ) − ψ(Σγ) as textbook mean-field VB does. "log" shrinks every rarely seen cell
    by up to an order of magnitude (exp ψ(0.24) ≈ 0.012 against 0.24), so each rater looks almost
    infallible and split latents collapse: sparse-regime ECE 0.16 with "log" against 0.12 with "mean" in
    the same model without the mixed component."""
    tolerance: float = 1e-3
    """Stop when no posterior entry moves by more than this between iterations. Against a fit run to 1e-6,
    1e-3 left every posterior within 0.011 (mean 1e-4 or less) with the same MAP labels on the five simulated
    regimes and on 500k judgments, in 37 iterations there instead of 137 (plain updates, fixed s; 27 with
    `relaxation`; 9 with s_r learnt)."""
    relaxation: float = 1.5
    """Over-relaxation of the expected counts from the third iteration on: counts ← old + relaxation·(new − old),
    which keeps the fixed point and shortens the slow drift of the rater parameters (500k judgments: 37 → 27
    iterations, every posterior closer to the 1e-6 fit than before). 1 is plain coordinate ascent; 2 oscillated
    at 500k. If the largest posterior move ever grows 1.5-fold from one iteration to the next, the fit falls
    back to 1 for the rest."""
    relaxation_min_judgments: int = 50_000
    """Over-relax only fits of at least this many judgments. The speed-up matters at scale; on a calibration
    round (a few hundred judgments) the extrapolated steps can stop the fit, at the posterior tolerance, on
    the sharper side of a split latent, and such fits take milliseconds with plain updates anyway."""
    max_iterations: int = 200
    """Upper bound on iterations; `converged` tells whether the tolerance was reached first."""

    def __post_init__(self) -> None:
        for name in ("class_concentration", "row_strength", "accuracy_strength", "pooled_strength", "tolerance"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number")
        low, high = self.row_strength_bounds
        if not (np.isfinite(high) and 0 < low <= high):
            raise ValueError("row_strength_bounds must be (low, high) with 0 < low <= high < inf")
        if not 0 <= self.ambiguous_share < 1:
            raise ValueError("ambiguous_share must lie in [0, 1)")
        if not 0 < self.ambiguous_dominance <= 1:
            raise ValueError("ambiguous_dominance must lie in (0, 1]")
        if self.expectation not in EXPECTATIONS:
            raise ValueError(f"expectation must be one of {', '.join(EXPECTATIONS)}")
        if not 1 <= self.relaxation < 2:
            raise ValueError("relaxation must lie in [1, 2)")
        if self.relaxation_min_judgments < 0:
            raise ValueError("relaxation_min_judgments must be non-negative")
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
        self.strength: np.ndarray | None = None

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
        prior = rho * self.related / np.maximum(n_related, 1) + (1 - rho) * self.unrelated / np.maximum(n_unrelated, 1)
        # A code with no related (or no unrelated) code puts that share on the others.
        return prior / np.maximum(prior.sum(axis=1, keepdims=True), 1e-300)

    def prior_counts(self, *, counts: np.ndarray, learn: bool = True) -> np.ndarray:
        """(R, K, K) Dirichlet parameters s_r·m_r from counts[r, true k, given l]; with `learn` (and
        `learn_row_strength`) every s_r first takes one Newton step toward its empirical-Bayes value."""
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
        self.pooled = pooled
        mean = (1 - accuracy)[:, None, None] * pooled[None, :, :]
        mean[:, np.arange(n_labels), np.arange(n_labels)] = accuracy[:, None]
        if n_labels == 1:
            mean[:] = 1.0
        if self.strength is None:
            self.strength = np.full(counts.shape[0], config.row_strength)
        if learn and config.learn_row_strength and n_labels > 1:
            self.strength = _strength_step(
                strength=self.strength, mean=mean, counts=counts, bounds=config.row_strength_bounds
            )
        return self.strength[:, None, None] * mean


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

    # given_by_unit[i, r·K + l]: how many times rater r said l on unit i. Both steps are products with it.
    given_by_unit = sparse.csr_matrix(
        (np.ones(ratings.n_judgments), (ratings.unit_index, ratings.rater_index * n_labels + ratings.category_index)),
        shape=(n_units, n_raters * n_labels),
    )
    given_by_unit.sum_duplicates()

    # float32 blocks and tables: the E-step streams (units, K) arrays, so half the bytes is nearly half the
    # time; sums of ~5 log-probabilities keep ~1e-6 relative precision, far below `tolerance`. Each block's
    # transpose is built once here: building it in every iteration cost more Python than the product.
    blocks = [
        (start, stop, block.astype(np.float32), block.T.tocsr().astype(np.float32))
        for start, stop, block in unit_blocks(given_by_unit=given_by_unit)
    ]
    share = config.ambiguous_share
    width = 2 * n_labels if share > 0 else n_labels
    posterior = posterior.astype(np.float32)
    counts = _counts(tallies=given_by_unit.T @ posterior.astype(np.float64), n_raters=n_raters)
    class_total = posterior.sum(axis=0, dtype=np.float64)
    ones = np.ones(max([width] + [stop - start for start, stop, _, _ in blocks]), dtype=np.float32)
    relaxation = config.relaxation if ratings.n_judgments >= config.relaxation_min_judgments else 1.0
    last_change, last_total = np.inf, class_total
    converged = False
    iteration = 0
    for iteration in range(1, config.max_iterations + 1):
        shape = structure.prior_counts(counts=counts) + counts
        log_clear, log_mixed = _log_tables(shape=shape, pooled=structure.pooled, config=config)
        class_shape = config.class_concentration + class_total
        if config.expectation == "mean":
            log_prior = np.log(class_shape / class_shape.sum())
        else:
            log_prior = digamma(class_shape) - digamma(class_shape.sum())
        # One table (R·L, 2K): columns :K the clear component, K: the mixed one, so one sparse product and one
        # max / sum per unit serve both. The E-step and the next M-step's tallies run in one pass over blocks
        # of units: whole (units, K) temporaries are fresh pages on every operation once they outgrow the cache.
        if share > 0:
            table = np.hstack([log_clear, log_mixed]).astype(np.float32)
            offset = np.concatenate([log_prior + np.log1p(-share), log_prior + np.log(share)]).astype(np.float32)
        else:
            table, offset = log_clear.astype(np.float32), log_prior.astype(np.float32)
        change = 0.0
        tallies = np.zeros((n_raters * n_labels, n_labels))
        class_total = np.zeros(n_labels)
        for start, stop, block, block_t in blocks:
            joint = block @ table
            joint += offset
            # Every entry is a log-probability (≤ 0), so exp cannot overflow and needs no max shift (a max over
            # a short axis cost as much as the exp and the product together). Rows whose total underflows
            # (a unit with tens of judgments, or one no class explains) are redone with the max subtracted.
            raw = joint
            joint = np.exp(raw)
            total = joint @ ones[:width]
            low = np.flatnonzero(~(total > _SAFE_TOTAL))
            if low.size:
                shifted = raw[low] - raw[low].max(axis=1, keepdims=True)
                joint[low] = np.exp(shifted)
                total[low] = joint[low].sum(axis=1)
            scale = (1.0 / total)[:, None]
            # P(z = k, clear | judgments): the clear evidence alone estimates the raters' confusion rows, so
            # mixed latents do not make raters look worse than they are.
            clear_part = np.multiply(joint[:, :n_labels], scale)
            if share > 0:
                unit_posterior = np.add(joint[:, :n_labels], joint[:, n_labels:])
                unit_posterior *= scale
            else:
                unit_posterior = clear_part
            previous = posterior[start:stop]
            moved = np.subtract(unit_posterior, previous, out=previous)
            np.abs(moved, out=moved)
            change = max(change, float(moved.max()))
            previous[...] = unit_posterior
            tallies += block_t @ clear_part
            class_total += ones[: stop - start] @ unit_posterior
        new_counts = _counts(tallies=tallies, n_raters=n_raters)
        if change > 1.5 * last_change:
            relaxation = 1.0  # the extrapolation overshoots on this data: plain coordinate ascent from here on
        last_change = change
        if iteration > 2 and relaxation != 1.0:
            # Over-relaxed update of the expected counts: step `relaxation` times along the coordinate-ascent
            # direction; same fixed point, fewer iterations along the slow direction of the rater parameters.
            counts = np.maximum(counts + relaxation * (new_counts - counts), 0.0)
            class_total = np.maximum(last_total + relaxation * (class_total - last_total), 0.0)
        else:
            counts = new_counts
        last_total = class_total
        if change <= config.tolerance:
            converged = True
            break

    posterior = posterior.astype(np.float64)
    posterior /= posterior.sum(axis=1, keepdims=True)  # rows of float32 sums, made exact in float64
    shape = structure.prior_counts(counts=counts, learn=False) + counts
    confusion = shape / shape.sum(axis=2, keepdims=True)
    class_shape = config.class_concentration + class_total
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


def _strength_step(
    *, strength: np.ndarray, mean: np.ndarray, counts: np.ndarray, bounds: tuple[float, float]
) -> np.ndarray:
    """One safeguarded Newton step per group g on u = log s_g of the Dirichlet–multinomial log evidence
        f(s) = Σ_k [lnΓ(s) − lnΓ(s + N_k)] + Σ_kl [lnΓ(s·m_kl + n_kl) − lnΓ(s·m_kl)]
    of the group's expected counts n[g, k, l] (rows k, cells l; N_k = Σ_l n_kl) under their prior means
    m[g, k, l]; steps are at most a factor e and, where f is not concave in u, go uphill by that factor.
    Kept within `bounds`."""
    low, high = bounds
    s = strength[:, None]
    n_row = counts.sum(axis=2)
    mean = np.maximum(mean, 1e-300)
    shape = s[:, :, None] * mean
    first = (digamma(s) - digamma(s + n_row)).sum(axis=1) + (mean * (digamma(shape + counts) - digamma(shape))).sum(
        axis=(1, 2)
    )
    second = (polygamma(1, s) - polygamma(1, s + n_row)).sum(axis=1) + (
        mean**2 * (polygamma(1, shape + counts) - polygamma(1, shape))
    ).sum(axis=(1, 2))
    gradient = strength * first
    curvature = gradient + strength**2 * second
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(curvature < 0, -gradient / curvature, np.sign(gradient))
    step = np.clip(np.nan_to_num(step, nan=0.0), -1.0, 1.0)
    return np.clip(strength * np.exp(step), low, high)


def _counts(*, tallies: np.ndarray, n_raters: int) -> np.ndarray:
    """(R, true k, given l) from (R·L, K) tallies: expected times rater r said l on units whose truth is k."""
    n_labels = tallies.shape[1]
    return np.asarray(tallies).reshape(n_raters, n_labels, n_labels).transpose(0, 2, 1)


def _log_tables(
    *, shape: np.ndarray, pooled: np.ndarray, config: BayesianDawidSkeneConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(R·L, K) tables, row r·K + l holding, for every true k, the log-probability that r says l on a clear
    unit and on a mixed one (perceived concept p drawn from M[k]: w on k, the rest as c_k)."""
    n_raters, n_labels, _ = shape.shape
    if config.expectation == "mean":
        confusion = shape / shape.sum(axis=2, keepdims=True)
        log_clear = np.log(confusion)
    else:
        log_clear = digamma(shape) - digamma(shape.sum(axis=2, keepdims=True))
        confusion = np.exp(log_clear)
    mixing = (1 - config.ambiguous_dominance) * pooled
    mixing[np.diag_indices(n_labels)] = config.ambiguous_dominance
    log_mixed = np.log(np.einsum("kp,rpl->rkl", mixing, confusion))

    def layout(table: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(table.transpose(0, 2, 1)).reshape(n_raters * n_labels, n_labels)

    return layout(log_clear), layout(log_mixed)
