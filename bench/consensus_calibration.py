"""Calibration of consensus soft labels on simulated physicians, and fit time at scale: one table per claim.

Run from the repository root:  .venv/bin/python bench/consensus_calibration.py [--seeds 5] [--export DIR]
Each regime of annotation.stats.simulation is drawn with `--seeds` seeds; a method's scores pool the latents
of all draws (ECE over 10 bins is biased upward on a few hundred latents: even the true generative model
scores ~0.04 on one 300-latent draw). `--export DIR` also writes every draw as CSV (task, worker, label,
truth, ambiguous) for tools outside Concord, e.g. crowd-kit in a throwaway virtual environment.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotation.stats.consensus import consensus_fit
from annotation.stats.simulation import REGIMES, scale_regime, score, simulate

METHODS = ("majority", "weighted", "dawid-skene", "bayesian-ds")


def _export(*, simulation, path: Path) -> None:
    ratings = simulation.ratings
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "worker", "label", "truth", "ambiguous"])
        for unit, rater, label in zip(ratings.unit_index, ratings.rater_index, ratings.category_index, strict=False):
            writer.writerow(
                [
                    ratings.units[unit],
                    ratings.raters[rater],
                    ratings.categories[label],
                    ratings.categories[simulation.truth[unit]],
                    int(simulation.ambiguous[unit]),
                ]
            )


def calibration_table(*, n_seeds: int, export: Path | None) -> None:
    print("| regime | latents × draws | method | accuracy | ECE | Brier | log loss | H ambiguous | H clear |")
    print("|---|---|---|---|---|---|---|---|---|")
    for regime in REGIMES:
        posteriors: dict[str, list[np.ndarray]] = {method: [] for method in METHODS}
        truth, ambiguous = [], []
        for seed in range(n_seeds):
            simulation = simulate(regime=regime, seed=1000 + seed)
            if export is not None:
                _export(simulation=simulation, path=export / f"{regime.name}-{seed}.csv")
            truth.append(simulation.truth)
            ambiguous.append(simulation.ambiguous)
            for method in METHODS:
                result = consensus_fit(
                    method=method, ratings=simulation.ratings, weights=simulation.weights, parents=simulation.parents
                )
                posteriors[method].append(result.posterior)
        for method in METHODS:
            scores = score(
                posterior=np.concatenate(posteriors[method]),
                truth=np.concatenate(truth),
                ambiguous=np.concatenate(ambiguous),
            )
            print(
                f"| {regime.name} | {regime.n_units} × {n_seeds} | {method} | {scores.accuracy:.3f} | "
                f"{scores.ece:.3f} | {scores.brier:.3f} | {scores.log_loss:.3f} | {scores.entropy_ambiguous:.3f} | "
                f"{scores.entropy_clear:.3f} |",
                flush=True,
            )


def timing_table(*, sizes: list[int]) -> None:
    print()
    # CPU seconds of this process next to wall seconds: on a shared machine the wall clock also counts the
    # time other processes held the core; with OMP_NUM_THREADS=1 CPU time is the one-core cost.
    print("| judgments | latents | method | wall s | CPU s (best of 2) | iterations | CPU ms / iteration | accuracy |")
    print("|---|---|---|---|---|---|---|---|")
    for n_labels in sizes:
        simulation = simulate(regime=scale_regime(n_labels=n_labels), seed=7)
        for method in ("dawid-skene", "bayesian-ds"):
            best, wall, result = np.inf, np.inf, None
            for _ in range(2):
                start, start_wall = time.process_time(), time.perf_counter()
                result = consensus_fit(
                    method=method, ratings=simulation.ratings, weights=simulation.weights, parents=simulation.parents
                )
                best = min(best, time.process_time() - start)
                wall = min(wall, time.perf_counter() - start_wall)
            accuracy = float(np.mean(result.map_index == simulation.truth))
            print(
                f"| {n_labels:,} | {len(simulation.ratings.units):,} | {method} | {wall:.2f} | {best:.2f} | "
                f"{result.iterations} | {1000 * best / result.iterations:.1f} | {accuracy:.3f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="draws per regime")
    parser.add_argument("--sizes", default="500000,2000000", help="judgment counts to time; empty for none")
    parser.add_argument("--export", type=Path, default=None, help="folder to write each draw as CSV")
    arguments = parser.parse_args()
    if arguments.export is not None:
        arguments.export.mkdir(parents=True, exist_ok=True)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        flush=True,
    )
    calibration_table(n_seeds=arguments.seeds, export=arguments.export)
    sizes = [int(size) for size in arguments.sizes.split(",") if size.strip()]
    if sizes:
        timing_table(sizes=sizes)


if __name__ == "__main__":
    main()
