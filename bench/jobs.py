"""Jobs under failure and scale-out: the sweeper's time to recovery after kill -9 of a whole worker, and a
sweep's wall time on one GPU-queue worker against two (CPU-backed).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord_jobs python bench/jobs.py [--lease 6] [--sweep 1]

Creates a scratch database (concord_bench_jobs) and a redis-server of its own on port 17535 (no persistence),
starts real Celery workers and beat, prints a table, and removes all of it. Recovery is timed from the
SIGKILL of the worker's process group to (a) the job running again under the standby worker and (b) its
success; the standby worker is started before the kill so that its start-up is not counted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup(artifacts: Path):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["ARTIFACT_ROOT"] = str(artifacts)
    os.environ.setdefault("CONCORD_TEST_DB_NAME", "concord_bench_jobs")  # never the test suite's database
    import django

    django.setup()
    from django.db import connection

    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    return connection, original


def recovery(*, redis_url: str, lease: float, sweep: float, tmp: Path) -> dict[str, float]:
    import numpy as np

    from inference.models import Job
    from inference.services import train_sae_request
    from tests.inference.processes import (
        broker,
        start_beat,
        start_worker,
        wait_for_worker,
        wait_until,
    )

    env = {"JOB_LEASE_SECONDS": str(lease), "JOB_SWEEP_SECONDS": str(sweep)}
    path = tmp / "acts.npy"
    np.save(path, np.random.default_rng(0).standard_normal((4000, 16)).astype(np.float32))
    processes = []
    try:
        with broker(redis_url) as app:
            first = start_worker(name="first@bench", broker=redis_url, log=tmp / "first.log", **env)
            processes.append(first)
            wait_for_worker(app, "first@bench", first)
            job = train_sae_request(
                activations_path=str(path),
                arch="topk",
                width=32,
                k=4,
                steps=600,
                batch_size=64,
                checkpoint_every=50,
                out=str(tmp / "sae"),
            )
            from django.conf import settings

            checkpoints = Path(settings.ARTIFACT_ROOT) / "checkpoints" / str(job.uuid)
            wait_until(lambda: any(checkpoints.glob("step-*")), timeout=300, what="a checkpoint")
            processes.append(start_beat(broker=redis_url, log=tmp / "beat.log", schedule=tmp / "beat-schedule", **env))
            # A standby worker on both queues, up before the kill: its start-up is not part of the recovery.
            standby = start_worker(name="standby@bench", broker=redis_url, log=tmp / "standby.log", **env)
            processes.append(standby)
            wait_for_worker(app, "standby@bench", standby)
            first.kill()
            killed = time.monotonic()
            wait_until(
                lambda: Job.objects.filter(pk=job.pk, attempts=2, status="running").exists(),
                timeout=300,
                what="the job to run again",
                poll=0.05,
            )
            rerun = time.monotonic() - killed
            finished = wait_until(
                lambda: (row := Job.objects.get(pk=job.pk)).is_finished and row, timeout=600, what="success", poll=0.1
            )
            done = time.monotonic() - killed
    finally:
        for process in reversed(processes):
            process.kill()
    return {
        "lease": lease,
        "sweep": sweep,
        "rerun_s": rerun,
        "success_s": done,
        "status": finished.status,
        "resumed": "resumed at step" in finished.log_tail,
    }


def sweep_wall(*, redis_url: str, n_workers: int, tmp: Path) -> float:
    from accounts.models import Role
    from inference.services import sweep_launch
    from tests import factories
    from tests.inference.processes import (
        broker,
        start_worker,
        wait_for_worker,
        wait_until,
    )
    from tests.inference.worlds import synthetic_activation_set

    researcher = factories.user(role=Role.RESEARCHER)
    activation_set = synthetic_activation_set(n_snippets=60, tokens_per_snippet=16, d_in=16)
    workers = []
    try:
        with broker(redis_url) as app:
            for i in range(n_workers):
                name = f"gpu{i}-{n_workers}@bench"
                workers.append(
                    start_worker(
                        name=name, broker=redis_url, log=tmp / f"{name}.log", queues="gpu", CONCORD_DEVICE="cpu"
                    )
                )
                wait_for_worker(app, name, workers[-1])
            started = time.monotonic()
            sweep = sweep_launch(
                activation_set=activation_set,
                arch="topk",
                widths=[32, 64],
                ks=[4, 8],
                steps=300,
                batch_size=128,
                checkpoint_every=100,
                n_top=5,
                by=researcher,
                name=f"{n_workers} workers",
            )
            wait_until(
                lambda: (
                    (jobs := list(sweep.jobs.all())) and len(jobs) == 8 and all(j.status == "succeeded" for j in jobs)
                ),
                timeout=1200,
                what="the sweep",
                poll=0.2,
            )
            return time.monotonic() - started
    finally:
        for worker in workers:
            worker.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lease", type=float, default=6.0)
    parser.add_argument("--sweep", type=float, default=1.0)
    parser.add_argument("--skip-recovery", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as scratch:
        tmp = Path(scratch)
        connection, original = _setup(tmp / "artifacts")
        from tests.inference.processes import REDIS_PORTS, RedisServer

        redis_server = RedisServer(REDIS_PORTS["bench"], tmp / "redis.log").start()
        try:
            if not args.skip_recovery:
                result = recovery(redis_url=redis_server.url, lease=args.lease, sweep=args.sweep, tmp=tmp)
                print("| measure | lease s | sweep s | kill → running again s | kill → succeeded s | resumed |")
                print("|---|---|---|---|---|---|")
                print(
                    f"| reaper recovery after kill -9 of the whole worker | {result['lease']:.0f} | "
                    f"{result['sweep']:.0f} | {result['rerun_s']:.1f} | {result['success_s']:.1f} | "
                    f"{result['resumed']} ({result['status']}) |"
                )
            if not args.skip_sweep:
                one = sweep_wall(redis_url=redis_server.url, n_workers=1, tmp=tmp)
                two = sweep_wall(redis_url=redis_server.url, n_workers=2, tmp=tmp)
                print(f"\n| sweep of 4 SAEs (train + mine), cores: {os.cpu_count()} | wall s |")
                print("|---|---|")
                print(f"| 1 GPU-queue worker | {one:.1f} |\n| 2 GPU-queue workers | {two:.1f} |")
                print(f"| ratio 1 / 2 | {one / two:.2f} |")
        finally:
            redis_server.stop()
            connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    main()
