"""Scale-out: a sweep of four SAEs spread over two GPU-queue workers (CPU-backed), each SAE then mined."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from features.models import SAE, Latent
from inference.models import Job
from inference.services import sweep_launch
from tests import factories
from tests.inference.processes import (
    REDIS_PORTS,
    RedisServer,
    broker,
    start_worker,
    wait_for_worker,
    wait_until,
)
from tests.inference.worlds import synthetic_activation_set

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_a_sweep_of_four_saes_on_two_gpu_workers_ends_with_four_mined_saes(tmp_path, postgres):
    redis_server = RedisServer(REDIS_PORTS["sweep"], tmp_path / "redis.log").start()
    workers = []
    try:
        researcher = factories.user(role=Role.RESEARCHER)
        activation_set = synthetic_activation_set()
        with broker(redis_server.url) as app:
            for name in ("gpu1@sweep", "gpu2@sweep"):
                workers.append(
                    start_worker(
                        name=name,
                        broker=redis_server.url,
                        log=tmp_path / f"{name}.log",
                        queues="gpu",
                        CONCORD_DEVICE="cpu",
                    )
                )
            for name, worker in zip(("gpu1@sweep", "gpu2@sweep"), workers, strict=True):
                wait_for_worker(app, name, worker)
            sweep = sweep_launch(
                activation_set=activation_set,
                arch="topk",
                widths=[16, 32],
                ks=[2, 4],
                steps=150,
                batch_size=64,
                checkpoint_every=50,
                n_top=5,
                by=researcher,
                name="grid",
            )
            done = wait_until(
                lambda: (
                    (jobs := list(sweep.jobs.all())) and len(jobs) == 8 and all(j.is_finished for j in jobs) and jobs
                ),
                timeout=600,
                what="four trainings and four minings",
                detail=lambda: [(j.pk, j.kind, j.status, j.message) for j in sweep.jobs.all()],
            )
    finally:
        for worker in workers:
            worker.kill()
        redis_server.stop()
    assert {(job.kind, job.status) for job in done} == {("train_sae", "succeeded"), ("mine_latents", "succeeded")}
    trainers = {job.worker.split(" pid ")[0] for job in done if job.kind == "train_sae"}
    assert trainers == {"gpu1@sweep", "gpu2@sweep"}  # the grid was spread over both workers
    saes = SAE.objects.filter(sweep_group=sweep.group)
    assert saes.count() == 4
    assert sorted((sae.d_sae, sae.k) for sae in saes) == [(16, 2), (16, 4), (32, 2), (32, 4)]
    assert all(Latent.objects.filter(sae=sae, density__isnull=False).count() == sae.d_sae for sae in saes)
    assert {job.parameters["sae_id"] for job in done if job.kind == "mine_latents"} == set(
        saes.values_list("pk", flat=True)
    )
    assert all(job.device_seconds > 0 and job.co2_kg > 0 for job in done)
    client = Client()
    client.force_login(researcher)
    page = client.get(f"/jobs/sweeps/{sweep.pk}/").content.decode()
    assert page.count("pareto-point") == 4 and page.count(">yes</td>") == 4
    assert Job.objects.filter(kind="mine_latents").count() == 4  # each SAE mined once
