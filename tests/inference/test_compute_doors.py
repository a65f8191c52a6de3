"""Compute accounting by device and through every door: CPU and GPU hours priced apart, the energy method in
words, and SAE and sweep totals on the pages, the API and the CSV exports."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Role
from features.models import ActivationSet
from inference.engine.accounting import Footprint, method_label, sum_footprints
from inference.models import Job, Sweep
from inference.services import job_create, job_run
from tests import factories
from tests.inference.worlds import spent_job

ROOT = Path(__file__).resolve().parents[2]


def test_energy_methods_read_as_measured_or_estimated():
    assert [method_label(m) for m in ("nvml", "rapl", "estimated", "", None)] == [
        "measured (NVML)",
        "measured (RAPL)",
        "estimated",
        "estimated",
        "estimated",
    ]
    assert sum_footprints([Footprint(1, 1, "nvml", 1, 1), Footprint(1, 1, "rapl", 1, 1)]).method_label == (
        "measured (RAPL)"
    )


def _settings_in_a_fresh_process(**env: str) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.GPU_HOUR_PRICE, s.CPU_HOUR_PRICE, s.DEVICE_HOUR_PRICE, s.CPU_POWER_WATTS]))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_HOUR_PRICE", "_POWER_WATTS"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(
        zip(("gpu", "cpu", "device", "cpu_watts"), json.loads(out.stdout.strip().splitlines()[-1]), strict=True)
    )


@pytest.mark.slow
def test_prices_and_power_draws_come_from_the_environment_and_device_hour_price_still_prices_gpus():
    assert _settings_in_a_fresh_process() == {"gpu": 3.0, "cpu": 0.2, "device": 3.0, "cpu_watts": 35.0}
    assert _settings_in_a_fresh_process(DEVICE_HOUR_PRICE="2.5")["gpu"] == 2.5  # the old single price
    fresh = _settings_in_a_fresh_process(
        DEVICE_HOUR_PRICE="2.5", GPU_HOUR_PRICE="4", CPU_HOUR_PRICE="0.05", CPU_POWER_WATTS="65"
    )
    assert fresh == {"gpu": 4.0, "cpu": 0.05, "device": 4.0, "cpu_watts": 65.0}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("device", "price", "watts", "gpu"),
    [("cpu", "CPU_HOUR_PRICE", "CPU_POWER_WATTS", False), ("cuda:0", "GPU_HOUR_PRICE", "GPU_POWER_WATTS", True)],
)
def test_a_cpu_hour_and_a_gpu_hour_are_priced_apart(settings, device, price, watts, gpu):
    settings.CPU_HOUR_PRICE, settings.GPU_HOUR_PRICE = 0.2, 3.0
    settings.CPU_POWER_WATTS, settings.GPU_POWER_WATTS = 35.0, 400.0
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, enqueue=False, by=factories.user(role=Role.RESEARCHER))

    def work(row, progress):
        progress.record(device=device)  # no NVML reading at the start, so CUDA time is estimated
        return {}

    finished = job_run(job_id=job.pk, work=work)
    assert finished.device_seconds > 0
    assert finished.cost == pytest.approx(finished.device_seconds / 3600 * getattr(settings, price))
    if finished.energy_method == "estimated":
        assert finished.energy_kwh == pytest.approx(finished.device_seconds * getattr(settings, watts) / 3.6e6)
    assert (finished.gpu_seconds > 0) is gpu


@pytest.fixture
def costed(db):
    """One SAE from a sweep: capture 60 s (RAPL), training 3600 s (NVML), mining 120 s (NVML)."""
    researcher = factories.user(role=Role.RESEARCHER)
    sae = factories.sae()
    capture = spent_job(Job.Kind.CACHE_ACTIVATIONS, by=researcher, seconds=60, kwh=0.01, method="rapl")
    activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model,
        hook_point=sae.hook_point,
        corpus=factories.corpus(institution_obj=researcher.profile.institution),
        artifact_uri="/x",
        n_tokens=1,
        source_job_id=capture.pk,
    )
    sweep = Sweep.objects.create(name="grid", activation_set=activation_set, parameters={}, created_by=researcher)
    training = spent_job(Job.Kind.TRAIN_SAE, by=researcher, seconds=3600, kwh=0.4, method="nvml", sweep=sweep)
    sae.activation_set, sae.source_job_id, sae.sweep_group = activation_set, training.pk, sweep.group
    sae.save()
    spent_job(Job.Kind.MINE_LATENTS, by=researcher, seconds=120, kwh=0.02, method="nvml", sweep=sweep, sae_id=sae.pk)
    return {"researcher": researcher, "sae": sae, "sweep": sweep, "capture": capture}


EXPECTED_TOTAL = {
    "n_jobs": 3,
    "device_seconds": 3780.0,
    "energy_kwh": pytest.approx(0.43),
    "energy_method": "rapl",
    "energy_method_label": "measured (RAPL)",
    "co2_kg": pytest.approx(0.172),
    "cost": pytest.approx(3.15),
}


def test_the_sae_and_sweep_apis_carry_totals_and_parts(costed):
    api = APIClient()
    api.force_authenticate(costed["researcher"])
    sae = api.get(f"/api/v1/saes/{costed['sae'].pk}/compute/").json()
    assert sae["sae"] == costed["sae"].pk and sae["total"] == EXPECTED_TOTAL
    assert sae["capture"]["energy_method_label"] == "measured (RAPL)" and sae["training"]["device_seconds"] == 3600
    sweep = api.get(f"/api/v1/sweeps/{costed['sweep'].pk}/").json()
    assert sweep["compute"]["total"] == EXPECTED_TOTAL and sweep["compute"]["mining"]["device_seconds"] == 120
    assert sorted(sweep["jobs"]) == sorted(costed["sweep"].jobs.values_list("pk", flat=True))
    api.force_authenticate(factories.user(role=Role.RESEARCHER))  # another institution
    assert api.get(f"/api/v1/sweeps/{costed['sweep'].pk}/").status_code == 404
    api.force_authenticate(
        factories.user(role=Role.PHYSICIAN, institution_obj=costed["researcher"].profile.institution)
    )
    assert api.get(f"/api/v1/saes/{costed['sae'].pk}/compute/").status_code == 403


def test_the_sweep_csv_has_one_row_per_sweep_with_its_totals(costed):
    client = Client()
    client.force_login(costed["researcher"])
    response = client.get("/jobs/export.csv?by=sweep")
    assert response["Content-Disposition"] == 'attachment; filename="sweep-compute.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    row = rows[0]
    assert (row["sweep_id"], row["name"], row["n_jobs"], row["energy_method"]) == (
        str(costed["sweep"].pk),
        "grid",
        "3",
        "rapl",
    )
    assert float(row["device_seconds"]) == 3780 and float(row["cost"]) == pytest.approx(3.15)
    assert (row["capture_device_seconds"], row["training_device_seconds"], row["mining_device_seconds"]) == (
        "60.0",
        "3600.0",
        "120.0",
    )
    client.force_login(factories.user(role=Role.RESEARCHER))
    assert list(csv.DictReader(io.StringIO(client.get("/jobs/export.csv?by=sweep").content.decode()))) == []


def test_the_pages_say_how_energy_was_obtained(costed):
    client = Client()
    client.force_login(costed["researcher"])
    jobs = client.get("/jobs/").content.decode()
    assert 'class="job-method">measured (RAPL)<' in jobs and 'class="job-method">measured (NVML)<' in jobs
    capture = client.get(f"/jobs/{costed['capture'].pk}/").content.decode()
    assert 'class="job-method">measured (RAPL)<' in capture
    assert "(measured (RAPL))" in client.get(f"/jobs/saes/{costed['sae'].pk}/").content.decode()
    assert "(measured (RAPL))" in client.get(f"/jobs/sweeps/{costed['sweep'].pk}/").content.decode()
    progress = client.get(f"/jobs/progress.json?ids={costed['capture'].pk}").json()["jobs"][0]
    assert progress["energy_method_label"] == "measured (RAPL)"


def test_the_drift_page_shows_what_the_audit_cost(costed):
    audit = spent_job(Job.Kind.DRIFT_AUDIT, by=costed["researcher"], seconds=90, kwh=0.002)
    Job.objects.filter(pk=audit.pk).update(status="running")  # its report is not needed for the footprint
    client = Client()
    client.force_login(costed["researcher"])
    page = client.get(f"/drift/{audit.pk}/").content.decode()
    compute = page.split('id="compute"')[1]
    assert "90.0 s" in compute and "(estimated)" in compute and "0.000800 kg" in compute
