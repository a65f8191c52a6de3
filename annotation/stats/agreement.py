"""Inter-rater agreement: Krippendorff's alpha with a bootstrap CI, Fleiss' and Cohen's kappa, per-unit agreement."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import krippendorff
import numpy as np
from scipy import sparse
from scipy.stats import norm

from annotation.stats.tables import Category, ReliabilityMatrix, count_matrix_from_reliability

LEVELS = ("nominal", "ordinal", "interval", "ratio", "hierarchical")
PACKAGE_LEVELS = ("nominal", "ordinal", "interval", "ratio")

# Bounds the (draws × units) multiplicities and (draws × V × V) ordinal arrays held in memory at once.
_BOOTSTRAP_BLOCK = 4_000_000


@dataclass(frozen=True)
class AlphaResult:
    """Krippendorff's alpha over the pairable units.

    n_units, n_raters and n_pairable count what alpha uses: units with at least two values, the
    raters who gave a value in one of them, and the values in them (Krippendorff's n).
    ci is the bootstrap percentile interval, None when no draws were asked for.
    defined is False, with alpha NaN, ci None and the reason said, when the data cannot give an alpha
    (nothing pairable, a single pairable unit, or no variation), rather than a 0.0 that looks measured.
    """

    alpha: float
    level: str
    ci: tuple[float, float] | None
    n_units: int
    n_raters: int
    n_pairable: int
    n_draws: int
    confidence: float
    defined: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class FleissKappa:
    """defined is False, kappa NaN, with the reason, for a single unit or expected agreement 1."""

    kappa: float
    observed_agreement: float
    expected_agreement: float
    n_units: int
    n_raters_per_unit: int
    defined: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class CohenKappa:
    """kappa, its standard error and interval are NaN and defined False, with the reason, when undefined:
    a single item, or expected agreement 1 (both raters used one and the same category)."""

    kappa: float
    standard_error: float
    ci: tuple[float, float]
    n: int
    observed_agreement: float
    expected_agreement: float
    defined: bool = True
    reason: str | None = None


@dataclass(frozen=True, eq=False)
class PairwiseKappa:
    """kappa and n_common are (raters, raters); kappa is NaN on the diagonal and where undefined."""

    raters: tuple[str, ...]
    kappa: np.ndarray
    n_common: np.ndarray


@dataclass(frozen=True)
class PercentAgreement:
    value: float
    n_pairs: int
    n_units: int


@dataclass(frozen=True, eq=False)
class UnitAgreement:
    """Per unit (rows of the count matrix): share of agreeing pairs (NaN below two values) and label
    entropy normalised by log K, K the number of categories (columns)."""

    agreement: np.ndarray
    entropy: np.ndarray
    n_values: np.ndarray


def hierarchical_distances(*, categories: Sequence[Category], parent: Mapping[str, str | None]) -> np.ndarray:
    """(V, V) δ(a, b) = edges between a and b in the rubric tree / the tree's diameter.

    Roots (parent None or absent from the mapping) hang under one virtual root, so two concepts in
    different top-level branches are as far apart as their depths allow. Dividing by the diameter of
    the whole rubric, not of the concepts that happen to be used, keeps δ comparable across rounds.
    """
    neighbours: dict[str, set[str]] = {}
    for child, mother in parent.items():
        neighbours.setdefault(str(child), set())
        if mother is not None:
            neighbours.setdefault(str(mother), set())
            neighbours[str(child)].add(str(mother))
            neighbours[str(mother)].add(str(child))
    codes = [str(category) for category in categories]
    unknown = [code for code in codes if code not in neighbours]
    if unknown:
        raise ValueError(f"codes not in the rubric tree: {', '.join(sorted(unknown)[:10])}")
    for start in neighbours:
        _check_acyclic(start=start, parent=parent)
    roots = [code for code in neighbours if parent.get(code) is None]
    if len(roots) > 1:
        virtual = object()
        neighbours[virtual] = set(roots)  # type: ignore[index]
        for root in roots:
            neighbours[root].add(virtual)  # type: ignore[arg-type]
    far, _ = _farthest(start=roots[0], neighbours=neighbours)
    _, diameter = _farthest(start=far, neighbours=neighbours)
    if diameter == 0:
        raise ValueError("the rubric tree has a single concept; hierarchical alpha needs at least two")
    distances = np.zeros((len(codes), len(codes)))
    for row, code in enumerate(codes):
        reached = _distances_from(start=code, neighbours=neighbours)
        distances[row] = [reached[other] for other in codes]
    return distances / diameter


def _check_acyclic(*, start: str, parent: Mapping[str, str | None]) -> None:
    seen = {start}
    node = parent.get(start)
    while node is not None:
        if node in seen:
            raise ValueError(f"the rubric tree has a cycle through {node!r}")
        seen.add(node)
        node = parent.get(node)


def _distances_from(*, start: object, neighbours: Mapping[object, set]) -> dict[object, int]:
    reached = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for other in neighbours[node]:
            if other not in reached:
                reached[other] = reached[node] + 1
                queue.append(other)
    return reached


def _farthest(*, start: object, neighbours: Mapping[object, set]) -> tuple[object, int]:
    reached = _distances_from(start=start, neighbours=neighbours)
    node = max(reached, key=reached.__getitem__)
    return node, reached[node]


def _fixed_distances(
    *, level: str, categories: Sequence[Category], parent: Mapping[str, str | None] | None
) -> np.ndarray:
    n_categories = len(categories)
    if level == "nominal":
        return 1.0 - np.eye(n_categories)
    if level == "hierarchical":
        if parent is None:
            raise ValueError("hierarchical alpha needs the rubric tree as a parent mapping (code → parent code)")
        return hierarchical_distances(categories=categories, parent=parent)
    values = np.asarray(categories, dtype=float)
    difference = values[:, None] - values[None, :]
    if level == "interval":
        return difference**2
    total = values[:, None] + values[None, :]
    return np.divide(difference, total, out=np.zeros_like(difference), where=total != 0) ** 2


def _ordinal_distances(*, totals: np.ndarray) -> np.ndarray:
    """(draws, V, V) ordinal δ from (draws, V) pairable-value totals: δ depends on the marginals
    (Krippendorff 2011, eq. for ordinal metric), so it is rebuilt for every bootstrap draw."""
    n_categories = totals.shape[1]
    cumulative = np.concatenate([np.zeros((totals.shape[0], 1)), np.cumsum(totals, axis=1)], axis=1)
    index = np.arange(n_categories)
    low = np.minimum(index[:, None], index[None, :])
    high = np.maximum(index[:, None], index[None, :])
    between = cumulative[:, high + 1] - cumulative[:, low]
    return (between - (totals[:, low] + totals[:, high]) / 2) ** 2


def _unit_coincidences(*, counts: np.ndarray) -> sparse.csr_matrix:
    """(units, V·V) sparse: each unit's coincidence matrix (n nᵀ − diag n) / (m − 1), flattened."""
    n_categories = counts.shape[1]
    unit, category = np.nonzero(counts)
    number = counts[unit, category].astype(float)
    per_unit = np.bincount(unit, minlength=counts.shape[0])
    starts = np.cumsum(per_unit) - per_unit
    group_length = per_unit[unit]
    left = np.repeat(np.arange(unit.size), group_length)
    block_start = np.repeat(np.cumsum(group_length) - group_length, group_length)
    right = starts[unit[left]] + np.arange(left.size) - block_start
    value = number[left] * number[right] - np.where(left == right, number[left], 0.0)
    value /= counts.sum(axis=1)[unit[left]] - 1
    return sparse.csr_matrix(
        (value, (unit[left], category[left] * n_categories + category[right])),
        shape=(counts.shape[0], n_categories * n_categories),
    )


class _AlphaParts:
    """What every resample needs, computed once per unit (Hayes & Krippendorff 2007 resample values;
    here whole units are resampled, so a unit's coincidences travel together)."""

    def __init__(self, *, counts: np.ndarray, level: str, distances: np.ndarray | None) -> None:
        self.counts = counts.astype(float)
        self.level = level
        self.distances = distances
        if level == "ordinal":
            self.coincidences = _unit_coincidences(counts=counts).T.tocsr()
        else:
            pairable = self.counts.sum(axis=1)
            self.disagreement = ((self.counts @ distances) * self.counts).sum(axis=1) / (pairable - 1)

    def alphas(self, *, multiplicity: np.ndarray) -> np.ndarray:
        """(draws,) alpha for (draws, units) unit multiplicities; NaN where there is no variation."""
        totals = multiplicity @ self.counts
        n_pairable = totals.sum(axis=1)
        if self.level == "ordinal":
            distances = _ordinal_distances(totals=totals)
            n_categories = totals.shape[1]
            observed = (self.coincidences @ multiplicity.T).T.reshape(-1, n_categories, n_categories)
            observed_sum = np.einsum("dij,dij->d", observed, distances)
            expected_sum = np.einsum("di,dij,dj->d", totals, distances, totals)
        else:
            observed_sum = multiplicity @ self.disagreement
            expected_sum = ((totals @ self.distances) * totals).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = 1.0 - (n_pairable - 1) * observed_sum / expected_sum
        return np.where(expected_sum > 0, alpha, np.nan)


def _bootstrap_multiplicities(*, rng: np.random.Generator, n_units: int, n_draws: int) -> np.ndarray:
    picks = rng.integers(0, n_units, size=(n_draws, n_units))
    picks += np.arange(n_draws)[:, None] * n_units
    return np.bincount(picks.ravel(), minlength=n_draws * n_units).reshape(n_draws, n_units).astype(float)


def krippendorff_alpha(
    *,
    matrix: ReliabilityMatrix,
    level: str,
    parent: Mapping[str, str | None] | None = None,
    n_draws: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> AlphaResult:
    """Krippendorff's alpha (Krippendorff 2011) with a unit-bootstrap percentile CI.

    The four standard levels come from the `krippendorff` package; `hierarchical` is nominal with
    partial credit from the rubric tree (see `hierarchical_distances`). Units with fewer than two
    values are unpairable and ignored, as Krippendorff defines. Draws without variation (alpha
    undefined) are left out of the interval.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    if n_draws < 0:
        raise ValueError("n_draws must be zero (no CI) or positive")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    numeric = all(isinstance(category, float) for category in matrix.categories)
    if level in ("ordinal", "interval", "ratio") and not numeric:
        # Ordinal too: sorting codes as text would put "10" before "2".
        raise ValueError(f"{level} alpha needs numeric values")
    if level == "ratio" and any(category < 0 for category in matrix.categories):
        raise ValueError("ratio alpha needs non-negative values")

    # Bad input (no tree for hierarchical, unknown codes) is an error even where alpha would be undefined.
    distances = None
    if level != "ordinal":
        distances = _fixed_distances(level=level, categories=matrix.categories, parent=parent)

    counts = count_matrix_from_reliability(matrix=matrix).counts
    pairable = counts.sum(axis=1) >= 2
    pairable_codes = matrix.codes[pairable]

    def undefined(reason: str) -> AlphaResult:
        return AlphaResult(
            alpha=float("nan"),
            level=level,
            ci=None,
            n_units=int(pairable.sum()),
            n_raters=int((~np.isnan(pairable_codes)).any(axis=0).sum()),
            n_pairable=int(counts[pairable].sum()),
            n_draws=n_draws,
            confidence=confidence,
            defined=False,
            reason=reason,
        )

    if not pairable.any():
        return undefined("no unit has two or more values, so nothing is pairable")
    if pairable.sum() == 1:
        # One unit's values are their own expected distribution: D_o = D_e, alpha 0 by construction, and
        # every bootstrap draw is that unit again, so a (0, 0) interval would look like a measurement.
        return undefined("only one unit has two or more values; alpha needs at least two pairable units")
    counts = counts[pairable]
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return undefined("every pairable value is the same category (no variation)")
    parts = _AlphaParts(counts=counts, level=level, distances=distances)
    if level in PACKAGE_LEVELS:
        domain = np.asarray(matrix.categories, dtype=float) if numeric else np.arange(counts.shape[1])
        alpha = float(krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level))
    else:
        alpha = float(parts.alphas(multiplicity=np.ones((1, counts.shape[0])))[0])

    ci = None
    if n_draws:
        rng = np.random.default_rng(seed)
        block = max(1, _BOOTSTRAP_BLOCK // max(counts.shape[0], counts.shape[1] ** 2))
        alphas = np.concatenate(
            [
                parts.alphas(
                    multiplicity=_bootstrap_multiplicities(
                        rng=rng, n_units=counts.shape[0], n_draws=min(block, n_draws - start)
                    )
                )
                for start in range(0, n_draws, block)
            ]
        )
        tail = (1 - confidence) / 2
        if np.isnan(alphas).all():
            ci = (float("nan"), float("nan"))
        else:
            low, high = np.nanquantile(alphas, [tail, 1 - tail])
            ci = (float(low), float(high))

    return AlphaResult(
        alpha=alpha,
        level=level,
        ci=ci,
        n_units=int(pairable.sum()),
        n_raters=int((~np.isnan(pairable_codes)).any(axis=0).sum()),
        n_pairable=int(counts.sum()),
        n_draws=n_draws,
        confidence=confidence,
    )


def alpha_from_coincidences(*, counts: np.ndarray, distances: np.ndarray) -> float:
    """Alpha = 1 − D_o / D_e from (units, V) value counts and a fixed (V, V) distance matrix,
    computed here rather than by the package (used for the hierarchical level and as a cross-check)."""
    counts = np.asarray(counts, dtype=float)
    counts = counts[counts.sum(axis=1) >= 2]
    if counts.size == 0:
        raise ValueError("no unit has two or more values")
    parts = _AlphaParts(counts=counts, level="fixed", distances=np.asarray(distances, dtype=float))
    return float(parts.alphas(multiplicity=np.ones((1, counts.shape[0])))[0])


def fleiss_kappa(*, counts: np.ndarray) -> FleissKappa:
    """Fleiss (1971) kappa from (units, categories) counts; every unit needs the same number of ratings."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError("counts must be a non-empty (units, categories) array")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    per_unit = counts.sum(axis=1)
    values, how_many = np.unique(per_unit, return_counts=True)
    if values.size > 1:
        usual = values[np.argmax(how_many)]
        odd = np.flatnonzero(per_unit != usual)
        listed = ", ".join(f"row {row} has {per_unit[row]:g}" for row in odd[:5])
        more = f" and {odd.size - 5} more" if odd.size > 5 else ""
        raise ValueError(
            f"Fleiss' kappa needs the same number of ratings on every unit, but most rows have {usual:g} while "
            f"{listed}{more} (missing ratings?); use Krippendorff's alpha, which allows missing values"
        )
    n_raters = per_unit[0]
    if n_raters < 2:
        raise ValueError(f"Fleiss' kappa needs at least two ratings per unit; every row has {n_raters:g}")
    agreement = ((counts * (counts - 1)).sum(axis=1)) / (n_raters * (n_raters - 1))
    observed = float(agreement.mean())
    proportions = counts.sum(axis=0) / counts.sum()
    expected = float((proportions**2).sum())
    reason = None
    if counts.shape[0] < 2:
        reason = "one unit: its own ratings are the chance distribution, kappa needs at least two units"
    elif expected >= 1:
        reason = "every rating is the same category (expected agreement 1)"
    kappa = (observed - expected) / (1 - expected) if reason is None else float("nan")
    return FleissKappa(
        kappa=kappa,
        observed_agreement=observed,
        expected_agreement=expected,
        n_units=int(counts.shape[0]),
        n_raters_per_unit=int(n_raters),
        defined=reason is None,
        reason=reason,
    )


def cohen_kappa_from_table(*, table: np.ndarray, confidence: float = 0.95) -> CohenKappa:
    """Cohen (1960) kappa from a square confusion table (rows: first rater, columns: second), with the
    large-sample standard error of Fleiss, Cohen & Everitt (1969) and a normal interval."""
    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise ValueError(f"the confusion table must be square, got shape {table.shape}")
    if (table < 0).any():
        raise ValueError("the confusion table must be non-negative")
    n = table.sum()
    if n == 0:
        raise ValueError("the confusion table is empty")
    proportion = table / n
    rows = proportion.sum(axis=1)
    columns = proportion.sum(axis=0)
    observed = float(np.trace(proportion))
    expected = float(rows @ columns)
    reason = None
    if n < 2:
        reason = "one item: kappa needs at least two"
    elif expected >= 1:
        reason = "both raters used one and the same category (expected agreement 1)"
    if reason is not None:
        nan = float("nan")
        return CohenKappa(nan, nan, (nan, nan), int(n), observed, expected, defined=False, reason=reason)
    kappa = (observed - expected) / (1 - expected)
    diagonal = np.diag(proportion)
    agreeing = (diagonal * (1 - (rows + columns) * (1 - kappa)) ** 2).sum()
    off_diagonal = proportion * (columns[:, None] + rows[None, :]) ** 2
    disagreeing = (1 - kappa) ** 2 * (off_diagonal.sum() - np.trace(off_diagonal))
    variance = (agreeing + disagreeing - (kappa - expected * (1 - kappa)) ** 2) / (n * (1 - expected) ** 2)
    standard_error = float(np.sqrt(max(variance, 0.0)))
    z = float(norm.ppf(0.5 + confidence / 2))
    return CohenKappa(
        kappa=float(kappa),
        standard_error=standard_error,
        ci=(float(kappa - z * standard_error), float(kappa + z * standard_error)),
        n=int(n),
        observed_agreement=observed,
        expected_agreement=expected,
    )


def cohen_kappa_from_labels(
    *, first: Sequence[object], second: Sequence[object], confidence: float = 0.95
) -> CohenKappa:
    """Cohen's kappa of two raters' labels on the same items; items either rater left missing are skipped."""
    if len(first) != len(second):
        raise ValueError("both label sequences must cover the same items")
    pairs = [(a, b) for a, b in zip(first, second, strict=False) if not _missing(a) and not _missing(b)]
    if not pairs:
        raise ValueError("no item has a label from both raters")
    categories = sorted({label for pair in pairs for label in pair}, key=str)
    index = {category: position for position, category in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    for a, b in pairs:
        table[index[a], index[b]] += 1
    return cohen_kappa_from_table(table=table, confidence=confidence)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def pairwise_cohen_kappa(*, matrix: ReliabilityMatrix, min_common: int = 2) -> PairwiseKappa:
    """Cohen's kappa for every pair of raters over the units both judged."""
    codes = matrix.codes
    n_units, n_raters = codes.shape
    n_categories = len(matrix.categories)
    present = ~np.isnan(codes)
    unit, rater = np.nonzero(present)
    one_hot = sparse.csr_matrix(
        (np.ones(unit.size), (unit, rater * n_categories + codes[present].astype(np.int64))),
        shape=(n_units, n_raters * n_categories),
    )
    # All confusion tables at once: entry (a·V + i, b·V + j) counts units where a said i and b said j.
    tables = (one_hot.T @ one_hot).toarray().reshape(n_raters, n_categories, n_raters, n_categories)
    tables = tables.transpose(0, 2, 1, 3)
    n_common = tables.sum(axis=(2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = np.trace(tables, axis1=2, axis2=3) / n_common
        rows = tables.sum(axis=3) / n_common[..., None]
        columns = tables.sum(axis=2) / n_common[..., None]
        expected = (rows * columns).sum(axis=2)
        kappa = (observed - expected) / (1 - expected)
    kappa = np.where((n_common >= min_common) & (expected < 1), kappa, np.nan)
    np.fill_diagonal(kappa, np.nan)
    return PairwiseKappa(raters=matrix.raters, kappa=kappa, n_common=n_common.astype(np.int64))


def percent_agreement(*, counts: np.ndarray) -> PercentAgreement:
    """Share of agreeing pairs among all pairs of values judged on the same unit (pooled over units)."""
    counts = np.asarray(counts, dtype=float)
    per_unit = counts.sum(axis=1)
    pairs = per_unit * (per_unit - 1)
    if pairs.sum() == 0:
        raise ValueError("no unit has two or more values")
    agreeing = (counts * (counts - 1)).sum()
    return PercentAgreement(
        value=float(agreeing / pairs.sum()),
        n_pairs=int(pairs.sum() / 2),
        n_units=int((per_unit >= 2).sum()),
    )


def unit_agreement(*, counts: np.ndarray) -> UnitAgreement:
    """Per-unit share of agreeing pairs and normalised label entropy from (units, categories) counts."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2:
        raise ValueError("counts must be a (units, categories) array")
    per_unit = counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        agreement = (counts * (counts - 1)).sum(axis=1) / (per_unit * (per_unit - 1))
        share = counts / per_unit[:, None]
        entropy = -np.where(share > 0, share * np.log(share), 0.0).sum(axis=1)
    agreement = np.where(per_unit >= 2, agreement, np.nan)
    n_categories = counts.shape[1]
    entropy = entropy / np.log(n_categories) if n_categories > 1 else np.zeros_like(entropy)
    entropy = np.where(per_unit > 0, entropy, np.nan)
    return UnitAgreement(agreement=agreement, entropy=entropy, n_values=per_unit.astype(np.int64))
