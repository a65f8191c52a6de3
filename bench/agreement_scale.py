"""Krippendorff's alpha, its bootstrap and Dawid–Skene at scale: ours against the reference packages, one table.

Run from the repository root:  .venv/bin/python bench/agreement_scale.py
crowd-kit is not a Concord dependency; to add its Dawid–Skene column, run the same script from a throwaway
virtual environment that has it (python -m venv /tmp/ck-venv && /tmp/ck-venv/bin/pip install crowd-kit
krippendorff scikit-learn), e.g.  PYTHONPATH=. /tmp/ck-venv/bin/python bench/agreement_scale.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import krippendorff
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotation.stats.agreement import krippendorff_alpha  # noqa: E402
from annotation.stats.consensus import dawid_skene, majority_vote  # noqa: E402
from annotation.stats.tables import Ratings, reliability_matrix_from_values  # noqa: E402

ROWS: list[tuple[str, str, str, str]] = []


def _best_of(repeats: int, function):
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def _row(what: str, reference: str, ours: str, note: str) -> None:
    ROWS.append((what, reference, ours, note))
    print(f"  {what}: reference {reference}, ours {ours}  ({note})", flush=True)


def _alpha_data(*, n_units: int, n_raters: int, seed: int) -> np.ndarray:
    """(units, raters) values 1..5: each rater copies the unit's truth 70% of the time; 20% missing."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, size=n_units)
    noise = rng.integers(1, 6, size=(n_units, n_raters))
    values = np.where(rng.random((n_units, n_raters)) < 0.7, truth[:, None], noise)
    values = values.astype(float)
    values[rng.random((n_units, n_raters)) < 0.2] = np.nan
    return values


def bench_alpha(*, n_units: int, n_raters: int, n_draws: int, package_draws: int) -> None:
    values = _alpha_data(n_units=n_units, n_raters=n_raters, seed=0)
    matrix = reliability_matrix_from_values(values=values)
    for level in ("nominal", "ordinal", "interval"):
        package_time, package_alpha = _best_of(
            3, lambda: krippendorff.alpha(reliability_data=values.T, level_of_measurement=level)
        )
        ours_time, ours = _best_of(3, lambda: krippendorff_alpha(matrix=matrix, level=level, n_draws=0))
        _row(
            f"alpha {level}, {n_raters} raters × {n_units:,} units",
            f"{package_time * 1e3:.0f} ms (α={package_alpha:.6f})",
            f"{ours_time * 1e3:.0f} ms (α={ours.alpha:.6f})",
            f"|Δα|={abs(package_alpha - ours.alpha):.1e}",
        )

        rng = np.random.default_rng(1)
        start = time.perf_counter()
        for _ in range(package_draws):
            picked = values[rng.integers(0, n_units, size=n_units)]
            krippendorff.alpha(reliability_data=picked.T, level_of_measurement=level)
        package_bootstrap = (time.perf_counter() - start) / package_draws * n_draws
        ours_time, ours = _best_of(1, lambda: krippendorff_alpha(matrix=matrix, level=level, n_draws=n_draws, seed=1))
        _row(
            f"bootstrap {level}, {n_draws:,} draws",
            f"{package_bootstrap:.1f} s (loop, {package_draws} draws ×{n_draws // package_draws})",
            f"{ours_time:.2f} s (CI {ours.ci[0]:.4f}–{ours.ci[1]:.4f})",
            f"{package_bootstrap / ours_time:.0f}× faster; target ≤ 1 s",
        )


def _dawid_skene_data(*, n_raters: int, n_labels: int, n_classes: int, per_unit: int, seed: int):
    """Known truth; raters of accuracy 0.35–0.95, a fifth of them confusing classes 0 and 1 systematically."""
    rng = np.random.default_rng(seed)
    n_units = n_labels // per_unit
    truth = rng.integers(0, n_classes, size=n_units)
    unit_index = np.repeat(np.arange(n_units), per_unit)
    # Distinct raters per unit: a random offset walk over the rater ring.
    start = rng.integers(0, n_raters, size=n_units)
    step = rng.integers(1, n_raters // per_unit, size=n_units)
    rater_index = ((start[:, None] + step[:, None] * np.arange(per_unit)) % n_raters).ravel()
    accuracy = rng.uniform(0.35, 0.95, size=n_raters)
    confuser = rng.random(n_raters) < 0.2
    true = truth[unit_index]
    correct = rng.random(unit_index.size) < accuracy[rater_index]
    label = np.where(correct, true, rng.integers(0, n_classes, size=unit_index.size))
    swap = confuser[rater_index] & (true < 2) & (rng.random(unit_index.size) < 0.8)
    label = np.where(swap, 1 - true, label)
    ratings = Ratings(
        units=tuple(f"u{unit}" for unit in range(n_units)),
        raters=tuple(f"r{rater}" for rater in range(n_raters)),
        categories=tuple(f"c{label}" for label in range(n_classes)),
        unit_index=unit_index,
        rater_index=rater_index,
        category_index=label,
        occasion=np.zeros(unit_index.size, dtype=np.int64),
    )
    return ratings, truth


def bench_dawid_skene(*, n_raters: int, n_labels: int) -> None:
    ratings, truth = _dawid_skene_data(n_raters=n_raters, n_labels=n_labels, n_classes=5, per_unit=5, seed=2)
    ours_time, ours = _best_of(3, lambda: dawid_skene(ratings=ratings))
    ours_accuracy = float(np.mean(ours.map_index == truth))
    majority_accuracy = float(np.mean(majority_vote(ratings=ratings).map_index == truth))
    what = f"Dawid–Skene, {n_raters} raters × {n_labels:,} labels"
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError:
        _row(
            what,
            "crowd-kit not installed",
            f"{ours_time:.2f} s, {ours.iterations} it., acc {ours_accuracy:.3f}",
            f"majority vote acc {majority_accuracy:.3f}; target ≤ 0.5 s. For the crowd-kit column: python -m venv "
            "/tmp/ck-venv && /tmp/ck-venv/bin/pip install crowd-kit krippendorff scikit-learn, then "
            "PYTHONPATH=. /tmp/ck-venv/bin/python bench/agreement_scale.py",
        )
        return
    frame = pd.DataFrame({"task": ratings.unit_index, "worker": ratings.rater_index, "label": ratings.category_index})
    start = time.perf_counter()
    reference = DawidSkene(n_iter=100).fit(frame)
    reference_time = time.perf_counter() - start
    probabilities = reference.probas_.reindex(index=np.arange(len(ratings.units)), columns=np.arange(5)).to_numpy()
    reference_map = np.argmax(probabilities, axis=1)
    same_map = float(np.mean(reference_map == ours.map_index))
    mean_difference = float(np.mean(np.abs(probabilities - ours.posterior)))
    _row(
        what,
        f"crowd-kit {reference_time:.2f} s, {len(reference.loss_history_)} it., "
        f"acc {np.mean(reference_map == truth):.3f}",
        f"{ours_time:.2f} s, {ours.iterations} it., acc {ours_accuracy:.3f}",
        f"{reference_time / ours_time:.0f}× faster; same MAP {same_map:.4f}, mean |Δposterior| {mean_difference:.1e}; "
        f"majority vote acc {majority_accuracy:.3f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--draws", type=int, default=1_000)
    parser.add_argument("--package-draws", type=int, default=20, help="package bootstrap draws to time and extrapolate")
    parser.add_argument("--ds-raters", type=int, default=100)
    parser.add_argument("--ds-labels", type=int, default=500_000)
    arguments = parser.parse_args()

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, krippendorff {version('krippendorff')}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        flush=True,
    )
    bench_alpha(
        n_units=arguments.units,
        n_raters=arguments.raters,
        n_draws=arguments.draws,
        package_draws=arguments.package_draws,
    )
    bench_dawid_skene(n_raters=arguments.ds_raters, n_labels=arguments.ds_labels)

    header = ("measurement", "reference", "ours", "note")
    widths = [max(len(row[column]) for row in [header, *ROWS]) for column in range(4)]
    print()
    for row in [header, tuple("-" * width for width in widths), *ROWS]:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + " |")


if __name__ == "__main__":
    main()
