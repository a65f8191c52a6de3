"""Jobs under load and failure: round-close request latency before (statistics computed inside the request,
as the old code did) and after (the close queues a statistics job), the time from close to statistics for
a demo-sized round, a sweep's wall time on one GPU-queue worker against two (CPU-backed), and the
sweeper's time to recovery after kill -9 of a whole worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord_jobs python bench/jobs.py \
        [--lease 6] [--sweep 1] [--rounds 10] [--latents 12] [--raters 3] [--skip-recovery] [--skip-sweep] \
        [--skip-round-close]

Creates a scratch database (concord_bench_jobs) and a redis-server of its own on port 17535 (no persistence),
starts real Celery workers and beat, prints a table per measure, and removes all of it.
- Round close: `--rounds` rounds of `--latents` latents × `--raters` raters (overlap = raters), all labelled,
  are closed "before" (the round closed and `round_statistics_compute` run in the same timed call, which is
  what the request did) and as many "after" (POST /api/v1/rounds/<id>/close/ through the API client, which
  closes and queues). The demo round is the shape of the demo's larger round (config/demo.py: 40 latents,
  overlap 3, the demo's 8 physicians and seniors over 3 sites), built in the scratch database with simulated
  labels (seed_demo needs the MiniLM capture, too heavy here): closed through the API with a `cpu` worker
  running, timed until its statistics are done, and its twin computed inline for the "before" figure.
- Recovery is timed from the SIGKILL of the worker's process group to (a) the job running again under the
  standby worker and (b) its success; the standby worker is started before the kill so that its start-up is
  not counted.
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
    # Big enough that training, not job overhead, dominates each job (a few seconds of one core each); each
    # worker trains on one thread, so two workers on two cores can at best halve the wall time.
    activation_set = synthetic_activation_set(n_snippets=200, tokens_per_snippet=32, d_in=64)
    workers = []
    try:
        with broker(redis_url) as app:
            for i in range(n_workers):
                name = f"gpu{i}-{n_workers}@bench"
                workers.append(
                    start_worker(
                        name=name,
                        broker=redis_url,
                        log=tmp / f"{name}.log",
                        queues="gpu",
                        CONCORD_DEVICE="cpu",
                        OMP_NUM_THREADS="1",
                    )
                )
                wait_for_worker(app, name, workers[-1])
            started = time.monotonic()
            sweep = sweep_launch(
                activation_set=activation_set,
                arch="topk",
                widths=[256, 512],
                ks=[16, 32],
                steps=1500,
                batch_size=256,
                checkpoint_every=500,
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


DEMO_ROUND = {"latents": 40, "raters": {"ALDER": 3, "BIRCH": 3, "CEDAR": 2}, "overlap": 3}  # config/demo.py


def _percentiles(values: list[float]) -> tuple[float, float]:
    import statistics

    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _labelled_round(*, coordinator, version, raters, n_latents: int, overlap: int, institutions):
    """An open round of `n_latents` latents over `raters`, every assignment labelled (a deterministic mix
    of concepts, so that agreement and consensus have something to compute)."""
    from tests.annotation import worlds

    sae = worlds.sae_with_examples(n_latents=n_latents)
    round_ = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=institutions, raters_list=raters, overlap=overlap
    )
    codes = ("HF", "AF", "AKI", "NEG")
    worlds.label_everything(round_, choose=lambda a: codes[(a.latent.index + (a.rater_id % 3 == 0)) % len(codes)])
    return round_


def _close_inline(round_, *, by) -> float:
    """The old request: close the round and compute its statistics in the same call; seconds."""
    from django.db import transaction
    from django.utils import timezone

    from annotation.models import Round
    from annotation.services.statistics import round_statistics_compute

    started = time.perf_counter()
    with transaction.atomic():
        Round.objects.filter(pk=round_.pk).update(status=Round.Status.CLOSED, closed_at=timezone.now())
    round_statistics_compute(round=Round.objects.select_related("sae", "rubric_version").get(pk=round_.pk), by=by)
    return time.perf_counter() - started


def _close_via_api(client, round_) -> float:
    started = time.perf_counter()
    response = client.post(f"/api/v1/rounds/{round_.pk}/close/")
    elapsed = time.perf_counter() - started
    assert response.status_code in (200, 202), response.content
    return elapsed


def round_close(*, redis_url: str, rounds: int, latents: int, raters: int, tmp: Path) -> dict[str, float]:
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    from accounts.models import Role
    from annotation.models import Round
    from tests import factories
    from tests.annotation import worlds
    from tests.inference.processes import broker, start_worker, wait_for_worker, wait_until

    setup_test_environment()  # the API client's host name ("testserver") is allowed
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    version = worlds.rubric(by=coordinator)
    people = [factories.user(role=Role.PHYSICIAN, institution_obj=own) for _ in range(raters)]
    small = [
        _labelled_round(
            coordinator=coordinator,
            version=version,
            raters=people,
            n_latents=latents,
            overlap=raters,
            institutions=[own],
        )
        for _ in range(2 * rounds + 1)  # the last one warms the API up (imports, first connection), untimed
    ]
    sites = {code: factories.institution(code) for code in DEMO_ROUND["raters"]}
    demo_people = worlds.raters(per_institution=DEMO_ROUND["raters"])
    demo_twins = [
        _labelled_round(
            coordinator=coordinator,
            version=version,
            raters=demo_people,
            n_latents=DEMO_ROUND["latents"],
            overlap=DEMO_ROUND["overlap"],
            institutions=list(sites.values()),
        )
        for _ in range(2)
    ]
    before = [_close_inline(round_, by=coordinator) for round_ in small[:rounds]]
    demo_before = _close_inline(demo_twins[0], by=coordinator)
    client = APIClient()
    client.force_authenticate(coordinator)
    worker = None
    try:
        with broker(redis_url) as app:
            _close_via_api(client, small[-1])
            after = [_close_via_api(client, round_) for round_ in small[rounds:-1]]  # no worker yet: queued only
            worker = start_worker(name="cpu@bench-rounds", broker=redis_url, log=tmp / "rounds.log", queues="cpu")
            wait_for_worker(app, "cpu@bench-rounds", worker)
            wait_until(  # the queued statistics of the "after" rounds are done before the demo round is closed
                lambda: (
                    not Round.objects.filter(pk__in=[r.pk for r in small[rounds:]])
                    .exclude(statistics_status="done")
                    .exists()
                ),
                timeout=1800,
                what="the queued statistics",
                poll=0.2,
            )
            demo_request = _close_via_api(client, demo_twins[1])
            started = time.monotonic() - demo_request
            wait_until(
                lambda: Round.objects.filter(pk=demo_twins[1].pk, statistics_status__in=["done", "failed"]).exists(),
                timeout=1800,
                what="the demo round's statistics",
                poll=0.05,
            )
            demo_after = time.monotonic() - started
            demo_status = Round.objects.get(pk=demo_twins[1].pk).statistics_status
    finally:
        if worker is not None:
            worker.kill()
    return {
        "before": _percentiles(before),
        "after": _percentiles(after),
        "demo_before": demo_before,
        "demo_request": demo_request,
        "demo_after": demo_after,
        "demo_status": demo_status,
        "demo_labels": demo_twins[1].assignments.filter(label__isnull=False).count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lease", type=float, default=6.0)
    parser.add_argument("--sweep", type=float, default=1.0)
    parser.add_argument("--skip-recovery", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-round-close", action="store_true")
    parser.add_argument("--rounds", type=int, default=10, help="rounds closed before, and as many after")
    parser.add_argument("--latents", type=int, default=12, help="latents per round of the latency measure")
    parser.add_argument("--raters", type=int, default=3, help="raters per round of the latency measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as scratch:
        tmp = Path(scratch)
        connection, original = _setup(tmp / "artifacts")
        from tests.inference.processes import REDIS_PORTS, RedisServer

        redis_server = RedisServer(REDIS_PORTS["bench"], tmp / "redis.log").start()
        try:
            if not args.skip_round_close:
                closes = round_close(
                    redis_url=redis_server.url, rounds=args.rounds, latents=args.latents, raters=args.raters, tmp=tmp
                )
                shape = f"{args.rounds} rounds of {args.latents} latents × {args.raters} raters"
                print(f"| round close request ({shape}) | p50 ms | p95 ms |")
                print("|---|---|---|")
                for label, key in (
                    ("before: statistics inside the request", "before"),
                    ("after: API close, queued", "after"),
                ):
                    p50, p95 = closes[key]
                    print(f"| {label} | {p50 * 1000:.0f} | {p95 * 1000:.0f} |")
                print(
                    f"\n| demo-sized round ({DEMO_ROUND['latents']} latents, overlap {DEMO_ROUND['overlap']}, "
                    f"{closes['demo_labels']} labels) | s |"
                )
                print("|---|---|")
                print(f"| before: close request with statistics inline | {closes['demo_before']:.2f} |")
                print(f"| after: close request | {closes['demo_request']:.3f} |")
                print(
                    f"| after: close → statistics {closes['demo_status']} (one cpu worker) | {closes['demo_after']:.2f} |"
                )
                print()
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
