"""Long-format judgments (unit, rater, value) and the matrices the statistics are computed from."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

Category = str | float

_TRUE_STRINGS = frozenset({"1", "true", "t", "yes", "y"})


@dataclass(frozen=True, eq=False)
class Ratings:
    """Every judgment as parallel index arrays, one entry per judgment (n_judgments,).

    `occasion` is 0 for a rater's first judgment of a unit and 1, 2, … for the hidden repeats of the
    same unit; inter-rater statistics use occasion 0 only, Dawid–Skene and test–retest use all.
    `extra` holds further CSV columns as strings, aligned with the judgments.
    """

    units: tuple[str, ...]
    raters: tuple[str, ...]
    categories: tuple[Category, ...]
    unit_index: np.ndarray
    rater_index: np.ndarray
    category_index: np.ndarray
    occasion: np.ndarray
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def n_judgments(self) -> int:
        return int(self.unit_index.size)


@dataclass(frozen=True, eq=False)
class ReliabilityMatrix:
    """Krippendorff's reliability data, transposed: `codes` (units, raters) holds category indices,
    np.nan where a rater did not judge a unit."""

    units: tuple[str, ...]
    raters: tuple[str, ...]
    categories: tuple[Category, ...]
    codes: np.ndarray

    @property
    def values(self) -> np.ndarray:
        """(units, raters) of the numeric values themselves, np.nan where missing."""
        if not all(isinstance(category, float) for category in self.categories):
            raise ValueError("the categories are not numbers; read the CSV with numeric=True")
        domain = np.asarray(self.categories, dtype=float)
        values = np.full(self.codes.shape, np.nan)
        present = ~np.isnan(self.codes)
        values[present] = domain[self.codes[present].astype(int)]
        return values


@dataclass(frozen=True, eq=False)
class CountMatrix:
    """`counts` (units, categories): how many judgments put each unit in each category."""

    units: tuple[str, ...]
    categories: tuple[Category, ...]
    counts: np.ndarray


@dataclass(frozen=True, eq=False)
class RepeatPairs:
    """One rater's test–retest pairs: category indices of the first judgment and of each repeat."""

    rater: str
    units: tuple[str, ...]
    first: np.ndarray
    repeat: np.ndarray


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip() == ""


def ratings_from_rows(
    *,
    units: Sequence[str],
    raters: Sequence[str],
    values: Sequence[Category | None],
    is_repeat: Sequence[bool] | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> Ratings:
    """Index long-format rows; rows whose value is missing (None, blank, NaN) are dropped.

    Units and raters keep their order of first appearance; categories are sorted (numerically when
    every value is a number), which is the order ordinal alpha needs. Within one (unit, rater) the
    judgments not flagged `is_repeat` come first, so occasion 0 is the original assignment.
    """
    n_rows = len(units)
    if len(raters) != n_rows or len(values) != n_rows:
        raise ValueError("units, raters and values must have the same length")
    if is_repeat is not None and len(is_repeat) != n_rows:
        raise ValueError("is_repeat must have one entry per row")
    extra = dict(extra or {})
    for name, column in extra.items():
        if len(column) != n_rows:
            raise ValueError(f"extra column {name!r} must have one entry per row")

    kept = [row for row in range(n_rows) if not _is_missing(values[row])]
    if not kept:
        raise ValueError("no judgments: every row lacks a value")
    kept_values = [values[row] for row in kept]
    numeric = all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in kept_values)
    if numeric:
        kept_values = [float(value) for value in kept_values]
    elif any(not isinstance(value, str) for value in kept_values):
        raise ValueError("values must be all strings or all numbers")

    unit_ids = tuple(dict.fromkeys(str(units[row]) for row in kept))
    rater_ids = tuple(dict.fromkeys(str(raters[row]) for row in kept))
    categories = tuple(sorted(set(kept_values)))
    unit_lookup = {unit: index for index, unit in enumerate(unit_ids)}
    rater_lookup = {rater: index for index, rater in enumerate(rater_ids)}
    category_lookup = {category: index for index, category in enumerate(categories)}

    unit_index = np.fromiter((unit_lookup[str(units[row])] for row in kept), dtype=np.int64, count=len(kept))
    rater_index = np.fromiter((rater_lookup[str(raters[row])] for row in kept), dtype=np.int64, count=len(kept))
    category_index = np.fromiter((category_lookup[value] for value in kept_values), dtype=np.int64, count=len(kept))
    repeat_flag = np.zeros(len(kept), dtype=np.int64)
    if is_repeat is not None:
        repeat_flag = np.fromiter((bool(is_repeat[row]) for row in kept), dtype=np.int64, count=len(kept))

    occasion = _occasions(unit_index=unit_index, rater_index=rater_index, repeat_flag=repeat_flag)
    return Ratings(
        units=unit_ids,
        raters=rater_ids,
        categories=categories,
        unit_index=unit_index,
        rater_index=rater_index,
        category_index=category_index,
        occasion=occasion,
        extra={name: tuple(str(column[row]) for row in kept) for name, column in extra.items()},
    )


def _occasions(*, unit_index: np.ndarray, rater_index: np.ndarray, repeat_flag: np.ndarray) -> np.ndarray:
    position = np.arange(unit_index.size)
    order = np.lexsort((position, repeat_flag, rater_index, unit_index))
    pair_key = unit_index[order] * (int(rater_index.max()) + 1) + rater_index[order]
    starts = np.r_[True, pair_key[1:] != pair_key[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(order.size), 0))
    occasion = np.empty(order.size, dtype=np.int64)
    occasion[order] = np.arange(order.size) - group_start
    return occasion


def reliability_matrix(*, ratings: Ratings) -> ReliabilityMatrix:
    """Units × raters matrix of each rater's first judgment (repeats are left out)."""
    first = ratings.occasion == 0
    codes = np.full((len(ratings.units), len(ratings.raters)), np.nan)
    codes[ratings.unit_index[first], ratings.rater_index[first]] = ratings.category_index[first]
    return ReliabilityMatrix(units=ratings.units, raters=ratings.raters, categories=ratings.categories, codes=codes)


def reliability_matrix_from_values(*, values: np.ndarray) -> ReliabilityMatrix:
    """Wrap a numeric (units, raters) array with np.nan for missing; units and raters are named by position."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D (units, raters) array, got shape {values.shape}")
    present = ~np.isnan(values)
    categories = np.unique(values[present])
    codes = np.full(values.shape, np.nan)
    codes[present] = np.searchsorted(categories, values[present])
    return ReliabilityMatrix(
        units=tuple(str(unit) for unit in range(values.shape[0])),
        raters=tuple(str(rater) for rater in range(values.shape[1])),
        categories=tuple(float(category) for category in categories),
        codes=codes,
    )


def count_matrix(*, ratings: Ratings, include_repeats: bool = False) -> CountMatrix:
    """Units × categories judgment counts; repeats are left out unless asked for."""
    chosen = slice(None) if include_repeats else ratings.occasion == 0
    n_categories = len(ratings.categories)
    flat = ratings.unit_index[chosen] * n_categories + ratings.category_index[chosen]
    counts = np.bincount(flat, minlength=len(ratings.units) * n_categories).reshape(len(ratings.units), n_categories)
    return CountMatrix(units=ratings.units, categories=ratings.categories, counts=counts)


def count_matrix_from_reliability(*, matrix: ReliabilityMatrix) -> CountMatrix:
    """Units × categories counts of the judgments in a reliability matrix."""
    n_units, _ = matrix.codes.shape
    n_categories = len(matrix.categories)
    unit, _ = np.nonzero(~np.isnan(matrix.codes))
    flat = unit * n_categories + matrix.codes[~np.isnan(matrix.codes)].astype(np.int64)
    counts = np.bincount(flat, minlength=n_units * n_categories).reshape(n_units, n_categories)
    return CountMatrix(units=matrix.units, categories=matrix.categories, counts=counts)


def repeat_pairs(*, ratings: Ratings) -> dict[str, RepeatPairs]:
    """Per rater, each repeat judgment paired with the same rater's first judgment of that unit."""
    n_raters = len(ratings.raters)
    pair_key = ratings.unit_index * n_raters + ratings.rater_index
    first = ratings.occasion == 0
    first_category = dict(zip(pair_key[first].tolist(), ratings.category_index[first].tolist(), strict=False))
    pairs: dict[str, RepeatPairs] = {}
    repeats = np.flatnonzero(ratings.occasion > 0)
    for rater in range(n_raters):
        mine = repeats[ratings.rater_index[repeats] == rater]
        pairs[ratings.raters[rater]] = RepeatPairs(
            rater=ratings.raters[rater],
            units=tuple(ratings.units[unit] for unit in ratings.unit_index[mine]),
            first=np.array([first_category[key] for key in pair_key[mine].tolist()], dtype=np.int64),
            repeat=ratings.category_index[mine].copy(),
        )
    return pairs


# Concord's CSV exports put a ' before a cell that starts like a formula (accounts/csv_safety.py,
# OWASP); reading one back takes it off again, so that an exported -1 is the number -1.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str | None) -> str:
    """A CSV cell as written before export neutralisation: `'-1` → `-1`, `'=x` → `=x`; others unchanged."""
    value = value or ""
    if value.startswith("'") and value[1:2] and value[1:].startswith(_FORMULA_STARTS):
        return value[1:]
    return value


def read_long_csv(
    *,
    path: str | Path,
    unit_column: str = "latent_id",
    rater_column: str = "rater",
    value_column: str = "concept_code",
    numeric: bool = False,
    repeat_column: str | None = "is_repeat",
    extra_columns: Sequence[str] = (),
) -> Ratings:
    """Read a long-format CSV (one judgment per row) such as Concord's label export.

    `numeric=True` parses values as floats (interval and ratio data). The repeat column is optional:
    when the file has it, rows marked true (1/true/yes) are the hidden test–retest repeats. Extra
    columns absent from the file are skipped; the unit, rater and value columns are required. A cell that
    an export neutralised (`'-1`, `'=…`) is read as it was before (`-1`, `=…`).
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        if not header:
            raise ValueError(
                f"{path} is empty: expected a header row with {unit_column!r}, {rater_column!r} and {value_column!r}"
            )
        for column in (unit_column, rater_column, value_column):
            if column not in header:
                raise ValueError(f"column {column!r} is not in {path}; its columns are {', '.join(header)}")
        use_repeat = repeat_column is not None and repeat_column in header
        present_extra = [column for column in extra_columns if column in header]

        units: list[str] = []
        raters: list[str] = []
        values: list[Category | None] = []
        is_repeat: list[bool] = []
        extra: dict[str, list[str]] = {column: [] for column in present_extra}
        for row in reader:
            row = {key: _cell(cell) for key, cell in row.items() if key is not None}
            raw = (row.get(value_column) or "").strip()
            value: Category | None = raw or None
            if numeric and raw:
                try:
                    value = float(raw)
                except ValueError:
                    raise ValueError(
                        f"{path} line {reader.line_num}: {value_column}={raw!r} is not a number (needed for this level)"
                    ) from None
                if not math.isfinite(value):
                    raise ValueError(f"{path} line {reader.line_num}: {value_column}={raw!r} is not a finite number")
            unit = (row.get(unit_column) or "").strip()
            rater = (row.get(rater_column) or "").strip()
            if not unit or not rater:
                raise ValueError(
                    f"{path} line {reader.line_num}: the {unit_column!r} or {rater_column!r} cell is blank"
                )
            units.append(unit)
            raters.append(rater)
            values.append(value)
            is_repeat.append(use_repeat and (row.get(repeat_column) or "").strip().lower() in _TRUE_STRINGS)
            for column in present_extra:
                extra[column].append(row.get(column) or "")
    if not units:
        raise ValueError(f"{path} has a header but no rows")
    if all(value is None for value in values):
        raise ValueError(f"{path}: every {value_column!r} cell is blank")
    return ratings_from_rows(units=units, raters=raters, values=values, is_repeat=is_repeat, extra=extra)
