"""Compute, energy, CO₂ and money: the pure arithmetic, the counters, every job, SAE totals, projections."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role
from features.models import ActivationSet
from inference.engine.accounting import (
    EnergyMeter,
    Footprint,
    estimate_training,
    footprint,
    rapl_joules_between,
    rapl_read,
    sum_footprints,
)
from inference.models import Job
from inference.selectors import sae_footprint
from inference.services import job_create, job_run
from tests import factories
from tests.inference.worlds import spent_job


def test_an_estimated_hour_at_400_watts_is_0_4_kwh_and_160_g_co2():
    cost = footprint(
        device_seconds=3600,
        energy_joules=None,
        method="nvml",
        watts=400,
        carbon_intensity_kg_per_kwh=0.4,
        device_hour_price=3.0,
    )
    assert cost == Footprint(
        device_seconds=3600,
        energy_kwh=pytest.approx(0.4),
        method="estimated",
        co2_kg=pytest.approx(0.16),
        cost=pytest.approx(3.0),
    )


def test_measured_energy_is_kept_with_its_method():
    cost = footprint(
        device_seconds=1800,
        energy_joules=7.2e6,
        method="rapl",
        watts=999,
        carbon_intensity_kg_per_kwh=0.25,
        device_hour_price=4.0,
    )
    assert (cost.energy_kwh, cost.method, cost.co2_kg, cost.cost) == (2.0, "rapl", 0.5, 2.0)


def test_a_total_is_estimated_as_soon_as_one_part_is():
    measured = Footprint(10, 1.0, "nvml", 0.4, 1.0)
    total = sum_footprints([measured, Footprint(20, 2.0, "estimated", 0.8, 2.0)])
    assert (total.device_seconds, total.energy_kwh, total.co2_kg, total.method) == (
        30,
        3.0,
        pytest.approx(1.2),
        "estimated",
    )
    assert sum_footprints([measured, measured]).method == "nvml"


def _zone(root: Path, name: str, energy: int, wrap: int = 1_000_000) -> None:
    zone = root / name
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")


def test_rapl_counts_packages_only_and_survives_a_counter_wrap(tmp_path):
    _zone(tmp_path, "intel-rapl:0", 900_000)
    _zone(tmp_path, "intel-rapl:1", 100_000)
    _zone(tmp_path, "intel-rapl:0:0", 5)  # a core sub-zone: already inside package 0
    before = rapl_read(tmp_path)
    assert set(before) == {"intel-rapl:0", "intel-rapl:1"}
    _zone(tmp_path, "intel-rapl:0", 100_000)  # wrapped: 900k → 1M → 100k is 200k µJ
    _zone(tmp_path, "intel-rapl:1", 400_000)
    assert rapl_joules_between(before, rapl_read(tmp_path)) == pytest.approx(0.2 + 0.3)


def test_the_meter_reads_rapl_on_cpu_and_estimates_without_counters(tmp_path):
    _zone(tmp_path, "intel-rapl:0", 0, wrap=10**12)
    meter = EnergyMeter(powercap_root=tmp_path).start(gpu=False)
    _zone(tmp_path, "intel-rapl:0", 3_000_000, wrap=10**12)
    seconds, joules, method = meter.stop(device="cpu")
    assert (joules, method) == (3.0, "rapl") and seconds >= 0
    bare = EnergyMeter(powercap_root=tmp_path / "absent").start(gpu=False)
    assert bare.stop(device="cpu")[1:] == (None, "estimated")
    assert bare.stop(device="cuda:0")[1:] == (None, "estimated")  # no NVML reading at start


def test_projection_reproduces_hundreds_to_thousands_of_gpu_hours_for_tens_of_billions_of_tokens():
    # A 16k-latent-per-1k-d_in dictionary on a 4096-wide model and a 2^20 dictionary on an 8192-wide one.
    medium = estimate_training(tokens=2e10, d_in=4096, width=262_144, k=64, device="a100")
    large = estimate_training(tokens=5e10, d_in=8192, width=1_048_576, k=64, device="a100")
    assert 100 <= medium.gpu_hours <= 1000 and 1000 <= large.gpu_hours <= 10_000
    assert large.min_gpus > 1  # 2·8192·2^20 fp32 weights with Adam do not fit one 80 GB card
    # FLOPs by hand: 6·d·W (encoder) + 6·k·d (sparse decoder) per token.
    assert large.flops == pytest.approx(5e10 * (6 * 8192 * 1_048_576 + 6 * 64 * 8192))
    assert large.gpu_hours == pytest.approx(large.flops / (312e12 * 0.4) / 3600)
    assert large.energy_kwh == pytest.approx(large.gpu_hours * 0.4 * 1.1)
    assert large.co2_kg == pytest.approx(large.energy_kwh * 0.4) and large.cost == pytest.approx(large.gpu_hours * 3)
    h100 = estimate_training(tokens=5e10, d_in=8192, width=1_048_576, k=64, device="h100")
    assert h100.gpu_hours < large.gpu_hours / 3
    small = estimate_training(tokens=1e8, d_in=384, width=3072, k=32, device="h100")
    assert small.gpu_hours < 1


def test_estimate_training_command_prints_json_and_refuses_bad_input(settings):
    settings.GPU_HOUR_PRICE = 2.0
    out = io.StringIO()
    call_command(
        "estimate_training",
        "--tokens",
        "5e10",
        "--d-in",
        "8192",
        "--width",
        "1048576",
        "--k",
        "64",
        "--device",
        "a100",
        "--json",
        stdout=out,
    )
    result = json.loads(out.getvalue())
    assert {"gpu_hours", "kwh", "co2_kg", "cost"} <= set(result)
    assert result["cost"] == pytest.approx(result["gpu_hours"] * 2.0)
    with pytest.raises(CommandError, match="k must be between"):
        call_command(
            "estimate_training", "--tokens", "1e9", "--d-in", "8", "--width", "4", "--k", "9", stdout=io.StringIO()
        )


@pytest.mark.django_db
def test_every_job_records_device_seconds_energy_co2_and_cost_on_cpu(settings):
    settings.CPU_POWER_WATTS = 100.0
    settings.CARBON_INTENSITY_KG_PER_KWH = 0.5
    settings.CPU_HOUR_PRICE = 2.0
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, enqueue=False, by=factories.user(role=Role.RESEARCHER))

    def work(row, progress):
        progress.record(device="cpu")
        total = sum(math.sqrt(i) for i in range(200_000))  # some real CPU time
        return {"total": total}

    finished = job_run(job_id=job.pk, work=work)
    assert finished.status == "succeeded" and finished.device == "cpu" and finished.device_seconds > 0
    assert finished.energy_method in {"rapl", "estimated"}
    if finished.energy_method == "estimated":
        assert finished.energy_kwh == pytest.approx(finished.device_seconds * 100 / 3.6e6)
    assert finished.co2_kg == pytest.approx(finished.energy_kwh * 0.5)
    assert finished.cost == pytest.approx(finished.device_seconds / 3600 * 2.0)
    assert finished.gpu_seconds == 0


@pytest.mark.django_db
def test_an_sae_costs_its_capture_training_and_mining_jobs():
    sae = factories.sae()
    researcher = factories.user(role=Role.RESEARCHER)

    def spent(kind, seconds, kwh, **parameters):
        return spent_job(kind, by=researcher, seconds=seconds, kwh=kwh, **parameters)

    capture = spent(Job.Kind.CACHE_ACTIVATIONS, 60, 0.01)
    sae.activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model,
        hook_point=sae.hook_point,
        corpus=factories.corpus(),
        artifact_uri="/x",
        n_tokens=1,
        source_job_id=capture.pk,
    )
    sae.source_job_id = spent(Job.Kind.TRAIN_SAE, 3600, 0.4).pk
    sae.save()
    spent(Job.Kind.MINE_LATENTS, 120, 0.02, sae_id=sae.pk)
    spent(Job.Kind.MINE_LATENTS, 999, 9.0, sae_id=sae.pk + 1000)  # another SAE's
    totals = sae_footprint(sae=sae)
    assert totals["total"]["device_seconds"] == 3780 and totals["total"]["n_jobs"] == 3
    assert totals["total"]["energy_kwh"] == pytest.approx(0.43) and totals["total"]["co2_kg"] == pytest.approx(0.172)
    assert totals["parts"]["mining"]["device_seconds"] == 120
