"""The researchers' jobs pages: access, forms validated as the API validates, progress JSON, sweep comparison,
exports with compute and CO₂."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Role
from features.models import ActivationSet, HostModel
from inference.charts import pareto_chart
from inference.models import Job, Sweep
from inference.selectors import pareto_front
from inference.services import job_create
from tests import factories

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_physicians_and_coordinators_never_see_the_jobs_pages():
    researcher = factories.user(role=Role.RESEARCHER)
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, by=researcher, enqueue=False)
    for role in (Role.PHYSICIAN, Role.SENIOR, Role.COORDINATOR):
        client = _client(factories.user(role=role))
        for url in ("/jobs/", f"/jobs/{job.pk}/", "/jobs/export.csv", f"/jobs/progress.json?ids={job.pk}"):
            assert client.get(url).status_code == 404, (role, url)
        assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 404
        assert 'href="/jobs/"' not in client.get("/").content.decode()
    assert 'href="/jobs/"' in _client(researcher).get("/").content.decode()
    assert Client().get("/jobs/").status_code == 302  # anonymous: to the login page
    job.refresh_from_db()
    assert job.status == "queued"


def test_a_researcher_of_another_institution_cannot_follow_or_cancel_a_job():
    own, other = factories.institution("own"), factories.institution("other")
    job = job_create(
        kind=Job.Kind.IMPORT_CORPUS,
        parameters={},
        enqueue=False,
        by=factories.user(role=Role.RESEARCHER, institution_obj=own),
    )
    stranger = _client(factories.user(role=Role.RESEARCHER, institution_obj=other))
    assert stranger.get(f"/jobs/{job.pk}/").status_code == 404
    assert stranger.post(f"/jobs/{job.pk}/cancel/").status_code == 404
    assert stranger.get(f"/jobs/progress.json?ids={job.pk}").json() == {"jobs": []}
    colleague = _client(factories.user(role=Role.RESEARCHER, institution_obj=own))
    assert colleague.get(f"/jobs/progress.json?ids={job.pk}").json()["jobs"][0]["status"] == "queued"


def test_the_capture_form_refuses_a_foreign_private_corpus_exactly_as_the_api_does():
    own, other = factories.institution("own"), factories.institution("other")
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=own)
    private = factories.corpus(institution_obj=other)
    host = factories.host_model()
    payload = {"host_model": host.pk, "hook_name": "blocks.0.hook_resid_post", "corpus": private.pk}
    page = _client(researcher).post("/jobs/launch/capture/", payload)
    api = APIClient()
    api.force_authenticate(researcher)
    answer = api.post("/api/v1/jobs/cache-activations/", payload, format="json")
    assert page.status_code == answer.status_code == 400
    # A foreign private corpus answers word for word as a corpus that was never created (docs/access.md).
    absent = api.post("/api/v1/jobs/cache-activations/", {**payload, "corpus": 987654321}, format="json")
    assert answer.json()["corpus"] == [m.replace("987654321", str(private.pk)) for m in absent.json()["corpus"]]
    assert "object does not exist" in page.content.decode()
    assert private.name not in _client(researcher).get("/jobs/").content.decode()  # not even offered
    assert not Job.objects.exists()


def test_the_train_form_reports_the_services_refusal_and_launches_a_valid_request(django_capture_on_commit_callbacks):
    researcher = factories.user(role=Role.RESEARCHER)
    sae = factories.sae()
    activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model,
        hook_point=sae.hook_point,
        corpus=factories.corpus(),
        artifact_uri="/x",
        n_tokens=10,
    )
    client = _client(researcher)
    refused = client.post(
        "/jobs/launch/train/", {"activation_set": activation_set.pk, "arch": "topk", "width": 8, "k": 9}
    )
    assert refused.status_code == 400 and "k must be between 1 and the width (8)" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        launched = client.post(
            "/jobs/launch/train/",
            {"activation_set": activation_set.pk, "arch": "topk", "width": 8, "k": 2, "steps": 10},
        )
    job = Job.objects.get()
    assert launched.status_code == 302 and launched["Location"] == f"/jobs/{job.pk}/"
    assert (job.kind, job.queue, job.parameters["k"], job.created_by) == ("train_sae", "gpu", 2, researcher)
    assert job.sent_at is not None  # handed to the broker on commit


def test_a_sweep_from_the_form_creates_one_training_job_per_grid_point():
    researcher = factories.user(role=Role.RESEARCHER)
    sae = factories.sae()
    activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model,
        hook_point=sae.hook_point,
        corpus=factories.corpus(),
        artifact_uri="/x",
        n_tokens=10,
    )
    response = _client(researcher).post(
        "/jobs/launch/sweep/",
        {
            "activation_set": activation_set.pk,
            "arch": "topk",
            "widths": "16, 32",
            "ks": "2; 4",
            "steps": 5,
            "name": "grid",
        },
    )
    sweep = Sweep.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/sweeps/{sweep.pk}/"
    points = sorted((job.parameters["width"], job.parameters["k"]) for job in sweep.jobs.all())
    assert points == [(16, 2), (16, 4), (32, 2), (32, 4)]
    assert {job.queue for job in sweep.jobs.all()} == {"gpu"}
    assert {job.parameters["sweep_group"] for job in sweep.jobs.all()} == {sweep.group}
    empty = _client(researcher).post(
        "/jobs/launch/sweep/", {"activation_set": activation_set.pk, "arch": "relu", "widths": "16"}
    )
    assert empty.status_code == 400 and "give at least one L1 coefficient" in empty.content.decode()


def test_the_train_and_sweep_forms_offer_every_field_the_api_accepts_and_pass_them_on(
    django_capture_on_commit_callbacks,
):
    from inference.apis import SweepInputSerializer, TrainSAEInputSerializer

    researcher = factories.user(role=Role.RESEARCHER)
    sae = factories.sae()
    activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model, hook_point=sae.hook_point, corpus=factories.corpus(), artifact_uri="/x"
    )
    client = _client(researcher)
    page = client.get("/jobs/").content.decode()
    for form, serializer in (("train", TrainSAEInputSerializer), ("sweep", SweepInputSerializer)):
        block = re.search(rf'<form[^>]*id="form-{form}".*?</form>', page, flags=re.DOTALL).group(0)
        offered = set(re.findall(r'<(?:input|select)[^>]*name="(\w+)"', block)) - {"csrfmiddlewaretoken"}
        accepted = set(serializer().fields) - {"sweep_group"}  # the sweep sets a group for its own jobs
        assert offered == accepted, (form, sorted(accepted ^ offered))
    common = {"activation_set": activation_set.pk, "arch": "topk", "lr": "0.001", "seed": 7, "checkpoint_every": 25}
    with django_capture_on_commit_callbacks(execute=True):
        trained = client.post("/jobs/launch/train/", {**common, "width": 8, "k": 2, "name": "my sae"})
        swept = client.post("/jobs/launch/sweep/", {**common, "widths": "8", "ks": "2", "n_top": 5})
    assert trained.status_code == 302 and swept.status_code == 302
    job = Job.objects.get(sweep__isnull=True)
    assert (job.parameters["lr"], job.parameters["seed"], job.parameters["checkpoint_every"]) == (0.001, 7, 25)
    assert job.parameters["name"] == "my sae"
    sweep = Sweep.objects.get()
    assert {key: sweep.parameters[key] for key in ("lr", "seed", "checkpoint_every", "n_top")} == {
        "lr": 0.001,
        "seed": 7,
        "checkpoint_every": 25,
        "n_top": 5,
    }
    refused = client.post("/jobs/launch/train/", {**common, "width": 8, "k": 2, "lr": "0"})
    assert refused.status_code == 400 and 'id="errors-train"' in refused.content.decode()
    assert Job.objects.filter(sweep__isnull=True).count() == 1


def test_pareto_front_keeps_only_undominated_points():
    # (L0, FVE): lower L0 and higher FVE are better.
    points = [(10, 0.9), (20, 0.95), (15, 0.85), (30, 0.94), (5, 0.7)]
    assert pareto_front(points) == [4, 0, 1]


def test_the_sweep_page_plots_fve_against_l0_and_lists_each_sae():
    researcher = factories.user(role=Role.RESEARCHER)
    sae = factories.sae()
    activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model,
        hook_point=sae.hook_point,
        corpus=factories.corpus(),
        artifact_uri="/x",
        n_tokens=10,
    )
    sweep = Sweep.objects.create(
        name="s", activation_set=activation_set, parameters={"arch": "topk"}, created_by=researcher
    )
    job_create(kind=Job.Kind.TRAIN_SAE, parameters={}, by=researcher, enqueue=False, sweep=sweep)
    for index, (l0, fve) in enumerate([(4, 0.8), (8, 0.9), (6, 0.7)]):
        other = factories.sae(hook=sae.hook_point)
        other.sweep_group, other.metrics = sweep.group, {"l0": l0, "fve": fve, "dead_fraction": 0.1 * index}
        other.activation_set = activation_set
        other.save()
    page = _client(researcher).get(f"/jobs/sweeps/{sweep.pk}/").content.decode()
    assert page.count('class="pareto-point on-front"') == 2 and page.count('class="pareto-point"') == 1
    assert "<polyline" in page and page.count('<tr><td><a href="/jobs/saes/') == 3
    chart = pareto_chart([{"sae": None, "l0": 4, "fve": 0.8}, {"sae": None, "l0": 8, "fve": 0.9}])
    assert chart["points"][0]["x"] < chart["points"][1]["x"] and chart["points"][0]["y"] > chart["points"][1]["y"]


def test_the_sweep_page_shows_a_count_of_zero_monosemantic_latents_as_zero_and_an_unmined_sae_as_a_dash():
    researcher = factories.user(role=Role.RESEARCHER)
    sae = factories.sae()
    activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model, hook_point=sae.hook_point, corpus=factories.corpus(), artifact_uri="/x"
    )
    sweep = Sweep.objects.create(name="s", activation_set=activation_set, parameters={}, created_by=researcher)
    job_create(kind=Job.Kind.TRAIN_SAE, parameters={}, by=researcher, enqueue=False, sweep=sweep)
    for monosemanticity in ({"sae_mean_entropy": 1.5, "n_latents_r_ge_0_5": 0}, None):
        other = factories.sae(hook=sae.hook_point)
        other.sweep_group, other.activation_set = sweep.group, activation_set
        other.metrics = {"l0": 4, "fve": 0.8, **({"monosemanticity": monosemanticity} if monosemanticity else {})}
        other.save()
    response = _client(researcher).get(f"/jobs/sweeps/{sweep.pk}/")
    page = response.content.decode()
    assert response.status_code == 200 and page.count('<tr><td><a href="/jobs/saes/') == 2
    assert sorted(re.findall(r'<td class="mono-r">([^<]*)</td>', page)) == ["0", "—"]


def test_the_export_carries_compute_energy_co2_and_cost_of_each_job():
    researcher = factories.user(role=Role.RESEARCHER)
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, by=researcher, enqueue=False)
    Job.objects.filter(pk=job.pk).update(
        device_seconds=36.0, energy_kwh=0.001, co2_kg=0.0004, cost=0.03, energy_method="estimated", attempts=1
    )
    rows = list(csv.DictReader(io.StringIO(_client(researcher).get("/jobs/export.csv").content.decode())))
    assert (
        rows[0]["job_id"] == str(job.pk) and rows[0]["co2_kg"] == "0.0004" and rows[0]["energy_method"] == "estimated"
    )
    assert rows[0]["uuid"] == str(job.uuid)


def test_no_job_page_or_status_answer_shows_an_absolute_server_path(settings):
    """The job page, the jobs list, the steering run and drift audit pages and their status APIs show a
    job's message, parameters and result with artifact paths made relative and other paths cut to a name."""
    researcher = factories.user(role=Role.RESEARCHER)
    artifact = f"{settings.ARTIFACT_ROOT}/saes/5d1e"
    leak = "/srv/private/models/host-7/config.json"
    sae = factories.sae()
    HostModel.objects.filter(pk=sae.hook_point.host_model_id).update(kind=HostModel.Kind.CAUSAL)  # steerable
    jobs = {}
    for kind in (Job.Kind.TRAIN_SAE, Job.Kind.STEER, Job.Kind.DRIFT_AUDIT):
        job = job_create(
            kind=kind, parameters={"sae_id": sae.pk, "latents": [], "out": artifact}, by=researcher, enqueue=False
        )
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.FAILED,
            message=f"OSError: {leak} is missing",
            result={"artifact_uri": artifact, "source": leak},
            log_tail=f"reading {leak}\n",
        )
        jobs[kind] = job.pk
    client = _client(researcher)
    api = APIClient()
    api.force_authenticate(researcher)
    pages = {
        "job page": client.get(f"/jobs/{jobs[Job.Kind.TRAIN_SAE]}/"),
        "jobs list": client.get("/jobs/"),
        "progress": client.get(f"/jobs/progress.json?ids={jobs[Job.Kind.TRAIN_SAE]}"),
        "steering page": client.get(f"/steering/{jobs[Job.Kind.STEER]}/"),
        "steering api": api.get(f"/api/v1/steering/{jobs[Job.Kind.STEER]}/"),
        "drift page": client.get(f"/drift/{jobs[Job.Kind.DRIFT_AUDIT]}/"),
        "drift api": api.get(f"/api/v1/drift-audits/{jobs[Job.Kind.DRIFT_AUDIT]}/"),
        "job api": api.get(f"/api/v1/jobs/{jobs[Job.Kind.TRAIN_SAE]}/"),
    }
    for name, response in pages.items():
        body = response.content.decode()
        assert response.status_code == 200, (name, response.status_code)
        assert "config.json" in body, name  # the message is shown…
        assert "/srv/private" not in body and str(settings.ARTIFACT_ROOT) not in body, name  # …without the path
    assert "saes/5d1e" in pages["job page"].content.decode()
