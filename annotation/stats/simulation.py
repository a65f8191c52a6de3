"""Simulated physicians with known truth, and scores of soft labels against it (tests and bench share both).

A regime is a two-level rubric (groups of sibling concepts; only the leaves are labels), a pool of raters
and an assignment of `labels_per_unit` distinct raters to every latent.

Raters label what they *perceive*:
- an ordinary rater of accuracy a says the perceived concept with probability a; otherwise a sibling of
  it with probability `sibling_share`, any other concept with the rest (physicians mostly confuse
  neighbouring concepts of the rubric);
- a spammer says a uniformly random concept;
- a systematic confuser swaps the first two concepts of every group (says B for A and A for B) with
  probability `confuser_swap`, and is otherwise an ordinary rater of accuracy `confuser_accuracy`.

A clear latent is perceived as its true concept by everyone. A *truly ambiguous* latent fires on a
mixture of two concepts: its true concept T (the dominant one, drawn like any latent's truth) with
share w ~ U(ambiguous_weight) and a sibling B of T with share 1 − w; each rater independently perceives
T with probability w and B otherwise, then labels as above. Truth is therefore well defined (the concept
the latent mostly encodes) while the judgments are noisier on these latents than any rater's confusion
matrix says, which is the situation where a consensus method is tempted to be over-confident.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotation.stats.reliability import combine_weights
from annotation.stats.tables import Ratings


@dataclass(frozen=True)
class Regime:
    """One simulated labelling setting; every field is a property of the round, not of a method."""

    name: str
    n_units: int
    n_groups: int
    """Top-level rubric codes (parents); each has `concepts_per_group` leaf concepts, the labels."""
    concepts_per_group: int
    labels_per_unit: int
    rater_accuracy: tuple[float, ...]
    """Accuracy of each ordinary rater (one entry per rater)."""
    n_spammers: int = 0
    n_confusers: int = 0
    sibling_share: float = 0.8
    ambiguous_share: float = 0.2
    ambiguous_weight: tuple[float, float] = (0.55, 0.8)
    confuser_swap: float = 0.9
    confuser_accuracy: float = 0.85
    workload_skew: float = 0.0
    """0: raters equally busy; s > 0: rater j's activity ∝ (j + 1)^−s (a few raters do most of the work)."""

    def __post_init__(self) -> None:
        if self.n_raters < self.labels_per_unit:
            raise ValueError("labels_per_unit cannot exceed the number of raters")
        if self.n_groups < 1 or self.concepts_per_group < 2:
            raise ValueError("the rubric needs at least one group of two or more concepts")
        if not 0 <= self.ambiguous_share <= 1:
            raise ValueError("ambiguous_share must lie in [0, 1]")
        low, high = self.ambiguous_weight
        if not 0.5 < low <= high <= 1:
            raise ValueError("ambiguous_weight must lie in (0.5, 1]: the true concept dominates the mixture")

    @property
    def n_raters(self) -> int:
        return len(self.rater_accuracy) + self.n_spammers + self.n_confusers

    @property
    def n_concepts(self) -> int:
        return self.n_groups * self.concepts_per_group


@dataclass(frozen=True, eq=False)
class Simulation:
    """ratings (categories: every leaf concept, sorted), truth (units,) index into ratings.categories,
    ambiguous (units,) bool, parents (concept code → group code, group code → None), rater_kind per rater."""

    regime: Regime
    ratings: Ratings
    truth: np.ndarray
    ambiguous: np.ndarray
    parents: dict[str, str | None]
    rater_kind: tuple[str, ...]
    weights: dict[str, float]
    """Vote weights as the platform would measure them (`combine_weights`), from each rater's simulated
    test–retest kappa: ≈ accuracy² for an ordinary rater (two independent looks agree), 0 for a spammer,
    high for a systematic confuser (consistent, consistently wrong); learnability unknown (neutral)."""


def _codes(regime: Regime) -> tuple[list[str], dict[str, str | None]]:
    codes, parents = [], {}
    for group in range(regime.n_groups):
        parents[f"G{group:02d}"] = None
        for concept in range(regime.concepts_per_group):
            code = f"G{group:02d}.C{concept:02d}"
            codes.append(code)
            parents[code] = f"G{group:02d}"
    return codes, parents


def _assign(*, rng: np.random.Generator, regime: Regime) -> np.ndarray:
    """(units, labels_per_unit) distinct raters per unit, busier raters more often (weighted sampling
    without replacement, Efraimidis & Spirakis 2006: the m largest u^(1/activity))."""
    n_raters = regime.n_raters
    activity = (np.arange(n_raters) + 1.0) ** -regime.workload_skew
    activity = activity[rng.permutation(n_raters)]  # busy raters of every kind
    chosen = np.empty((regime.n_units, regime.labels_per_unit), dtype=np.int64)
    block = max(1, 4_000_000 // n_raters)
    for start in range(0, regime.n_units, block):
        stop = min(regime.n_units, start + block)
        keys = np.log(rng.random((stop - start, n_raters))) / activity
        chosen[start:stop] = np.argpartition(-keys, regime.labels_per_unit - 1, axis=1)[:, : regime.labels_per_unit]
    return chosen


def _random_other(*, rng: np.random.Generator, concept: np.ndarray, size_of_set: int, offset: np.ndarray) -> np.ndarray:
    """A uniformly random member of a set of `size_of_set` consecutive codes starting at offset, other than concept."""
    draw = rng.integers(0, size_of_set - 1, size=concept.size)
    position = concept - offset
    draw = draw + (draw >= position)
    return offset + draw


def simulate(*, regime: Regime, seed: int) -> Simulation:
    """Draw one round of the regime; the same seed gives the same judgments."""
    rng = np.random.default_rng(seed)
    codes, parents = _codes(regime)
    n_concepts, per_group = regime.n_concepts, regime.concepts_per_group
    kinds = ["rater"] * len(regime.rater_accuracy) + ["spammer"] * regime.n_spammers + ["confuser"] * regime.n_confusers
    accuracy = np.array(
        [*regime.rater_accuracy, *[0.0] * regime.n_spammers, *[regime.confuser_accuracy] * regime.n_confusers]
    )
    kind = np.array([{"rater": 0, "spammer": 1, "confuser": 2}[name] for name in kinds])

    truth = rng.integers(0, n_concepts, size=regime.n_units)
    ambiguous = rng.random(regime.n_units) < regime.ambiguous_share
    group_start = truth // per_group * per_group
    other = _random_other(rng=rng, concept=truth, size_of_set=per_group, offset=group_start)
    share = rng.uniform(*regime.ambiguous_weight, size=regime.n_units)

    raters = _assign(rng=rng, regime=regime)
    unit_index = np.repeat(np.arange(regime.n_units), regime.labels_per_unit)
    rater_index = raters.ravel()
    n = unit_index.size

    perceived = truth[unit_index].copy()
    mixed = ambiguous[unit_index] & (rng.random(n) >= share[unit_index])
    perceived[mixed] = other[unit_index][mixed]

    # Ordinary behaviour first, then spammers and confusers overwrite their own judgments.
    label = perceived.copy()
    wrong = rng.random(n) >= accuracy[rater_index]
    to_sibling = wrong & (rng.random(n) < regime.sibling_share)
    to_anywhere = wrong & ~to_sibling
    perceived_group = perceived // per_group * per_group
    label[to_sibling] = _random_other(
        rng=rng, concept=perceived[to_sibling], size_of_set=per_group, offset=perceived_group[to_sibling]
    )
    label[to_anywhere] = _random_other(
        rng=rng,
        concept=perceived[to_anywhere],
        size_of_set=n_concepts,
        offset=np.zeros(int(to_anywhere.sum()), dtype=np.int64),
    )
    spam = kind[rater_index] == 1
    label[spam] = rng.integers(0, n_concepts, size=int(spam.sum()))
    within = perceived - perceived_group
    swap = (kind[rater_index] == 2) & (within < 2) & (rng.random(n) < regime.confuser_swap)
    label[swap] = perceived_group[swap] + 1 - within[swap]

    ratings = Ratings(
        units=tuple(f"L{unit}" for unit in range(regime.n_units)),
        raters=tuple(f"{name}{index}" for index, name in enumerate(kinds)),
        categories=tuple(codes),
        unit_index=unit_index,
        rater_index=rater_index,
        category_index=label,
        occasion=np.zeros(n, dtype=np.int64),
    )
    consistency = np.where(kind == 1, 0.0, np.where(kind == 2, regime.confuser_swap, accuracy**2))
    weights = {
        rater: combine_weights(test_retest=float(kappa), learnability=None)
        for rater, kappa in zip(ratings.raters, consistency, strict=False)
    }
    return Simulation(
        regime=regime,
        ratings=ratings,
        truth=truth,
        ambiguous=ambiguous,
        parents=parents,
        rater_kind=tuple(kinds),
        weights=weights,
    )


# The regimes of issue 9: the sparse calibration round, the dense 18-rater round, and variations.
SPARSE = Regime(
    name="sparse",
    n_units=300,
    n_groups=4,
    concepts_per_group=5,
    labels_per_unit=3,
    rater_accuracy=(0.9, 0.85, 0.75, 0.7, 0.6, 0.55),
    ambiguous_share=0.2,
)
DENSE = Regime(
    name="dense",
    n_units=600,
    n_groups=4,
    concepts_per_group=5,
    labels_per_unit=5,
    rater_accuracy=(0.9, 0.85, 0.85, 0.8, 0.8, 0.75, 0.75, 0.7, 0.7, 0.65, 0.65, 0.6, 0.6, 0.55, 0.5, 0.5),
    n_spammers=1,
    n_confusers=1,
    ambiguous_share=0.1,
)
SPARSE_MANY_RATERS = Regime(
    name="sparse-12-raters",
    n_units=400,
    n_groups=5,
    concepts_per_group=6,
    labels_per_unit=3,
    rater_accuracy=(0.9, 0.85, 0.8, 0.8, 0.75, 0.7, 0.7, 0.65, 0.6, 0.55),
    n_spammers=1,
    n_confusers=1,
    ambiguous_share=0.15,
    workload_skew=1.0,
)
HIGHLY_AMBIGUOUS = Regime(
    name="ambiguous-40%",
    n_units=300,
    n_groups=4,
    concepts_per_group=5,
    labels_per_unit=3,
    rater_accuracy=(0.9, 0.85, 0.8, 0.7, 0.65),
    ambiguous_share=0.4,
)
FEW_CONCEPTS = Regime(
    name="8-concepts-2-labels",
    n_units=250,
    n_groups=2,
    concepts_per_group=4,
    labels_per_unit=2,
    rater_accuracy=(0.9, 0.8, 0.7, 0.6),
    ambiguous_share=0.2,
)
# The dense round with every ordinary rater 0.05 less accurate: majority vote ~0.84 as in issue 9's figures.
DENSE_HARD = Regime(
    name="dense-hard",
    n_units=600,
    n_groups=4,
    concepts_per_group=5,
    labels_per_unit=5,
    rater_accuracy=tuple(round(accuracy - 0.05, 2) for accuracy in DENSE.rater_accuracy),
    n_spammers=1,
    n_confusers=1,
    ambiguous_share=0.1,
)
REGIMES = (SPARSE, DENSE, DENSE_HARD, SPARSE_MANY_RATERS, HIGHLY_AMBIGUOUS, FEW_CONCEPTS)


def scale_regime(*, n_labels: int) -> Regime:
    """A large round for timing: 100 raters, 5 judgments per latent, 20 concepts."""
    accuracy = tuple(np.linspace(0.5, 0.95, 98).round(3).tolist())
    return Regime(
        name=f"scale-{n_labels}",
        n_units=n_labels // 5,
        n_groups=4,
        concepts_per_group=5,
        labels_per_unit=5,
        rater_accuracy=accuracy,
        n_spammers=1,
        n_confusers=1,
        ambiguous_share=0.1,
    )


@dataclass(frozen=True)
class CalibrationScore:
    """Soft labels scored against known truth. ece: expected calibration error of the top posterior over
    `n_bins` equal-width bins; brier: Σ_k (p_k − 1[k = truth])² averaged over units; log_loss: −log p_truth
    (p floored at 1e-15); entropy_*: mean normalised entropy on ambiguous and on clear units."""

    accuracy: float
    ece: float
    brier: float
    log_loss: float
    entropy_ambiguous: float
    entropy_clear: float
    n_units: int


def expected_calibration_error(*, posterior: np.ndarray, truth: np.ndarray, n_bins: int = 10) -> float:
    confidence = posterior.max(axis=1)
    correct = np.argmax(posterior, axis=1) == truth
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    size = np.bincount(bins, minlength=n_bins)
    gap = np.abs(
        np.bincount(bins, weights=correct, minlength=n_bins) - np.bincount(bins, weights=confidence, minlength=n_bins)
    )
    return float(gap.sum() / size.sum())


def score(*, posterior: np.ndarray, truth: np.ndarray, ambiguous: np.ndarray, n_bins: int = 10) -> CalibrationScore:
    """Score a (units, K) posterior against truth (units,) indices."""
    n_units, n_labels = posterior.shape
    rows = np.arange(n_units)
    squared = (posterior**2).sum(axis=1) - 2 * posterior[rows, truth] + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(posterior > 0, posterior * np.log(posterior), 0.0)
    entropy = np.abs(terms.sum(axis=1)) / np.log(n_labels) if n_labels > 1 else np.zeros(n_units)
    return CalibrationScore(
        accuracy=float(np.mean(np.argmax(posterior, axis=1) == truth)),
        ece=expected_calibration_error(posterior=posterior, truth=truth, n_bins=n_bins),
        brier=float(squared.mean()),
        log_loss=float(-np.log(np.maximum(posterior[rows, truth], 1e-15)).mean()),
        entropy_ambiguous=float(entropy[ambiguous].mean()) if ambiguous.any() else float("nan"),
        entropy_clear=float(entropy[~ambiguous].mean()) if (~ambiguous).any() else float("nan"),
        n_units=n_units,
    )
