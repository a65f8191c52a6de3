"""Time every stage of `seed_demo` from an empty database and check the demo's quality targets.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/pipeline_demo.py [--quick]

Runs on a fresh SQLite file and artifact folder under a temporary directory (the embedded default),
prints a table of stage times and the SAE's quality against issue 5's targets.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 300-snippet slice")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="concord-demo-bench-"))
    os.environ.update(
        CONCORD_VAR_DIR=str(workdir),
        ARTIFACT_ROOT=str(workdir / "artifacts"),
        DJANGO_SETTINGS_MODULE="config.settings",
        HF_HUB_OFFLINE="1",
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from config.demo import DemoSettings, demo_seed

    start = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrate_seconds = time.perf_counter() - start
    config = DemoSettings.for_quick() if args.quick else DemoSettings()
    summary = demo_seed(config=config, echo=lambda message: None)
    total = time.perf_counter() - start

    print(f"\nseed_demo{' --quick' if args.quick else ''} from an empty SQLite database, {os.cpu_count()} cores")
    print(f"{'stage':<32}{'seconds':>10}")
    print(f"{'migrate':<32}{migrate_seconds:>10.1f}")
    for stage, seconds in summary.stage_seconds.items():
        print(f"{stage:<32}{seconds:>10.1f}")
    print(f"{'total':<32}{total:>10.1f}   target ≤ 300 s: {'met' if total <= 300 else 'MISSED'}")

    metrics = summary.sae_metrics
    mono = metrics.get("monosemanticity", {})

    def check(value, test):
        return None if value is None else test(value)

    rows = [
        ("FVE", metrics.get("fve"), "≥ 0.85", check(metrics.get("fve"), lambda v: v >= 0.85)),
        ("L0", metrics.get("l0"), "≤ 32", check(metrics.get("l0"), lambda v: v <= 32)),
        (
            "dead fraction",
            metrics.get("dead_fraction"),
            "≤ 0.10",
            check(metrics.get("dead_fraction"), lambda v: v <= 0.10),
        ),
        (
            "mean entropy, SAE latents",
            mono.get("sae_mean_entropy"),
            "< neurons",
            check(mono.get("sae_mean_entropy"), lambda v: v < mono.get("neuron_mean_entropy", float("-inf"))),
        ),
        ("mean entropy, raw neurons", mono.get("neuron_mean_entropy"), "", None),
        (
            "latents with best r ≥ 0.5",
            mono.get("n_latents_r_ge_0_5"),
            "≥ 10",
            check(mono.get("n_latents_r_ge_0_5"), lambda v: v >= 10),
        ),
    ]
    print(f"\n{'quality':<32}{'value':>10}  {'target':<10}")
    for name, value, target, ok in rows:
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        verdict = "" if ok is None else ("met" if ok else "MISSED")  # None: no target, or no value
        print(f"{name:<32}{shown:>10}  {target:<10}{verdict}")
    print(f"\n(artifacts left in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
