"""Steering through the doors: who may launch and read a run, concept weighting from consensus, audit,
runs on a real Celery worker (the web process never loads torch), a failed run's error, the command's
JSON, and the page in Chromium. The host is a tiny random GPT-2 saved like any checkpoint."""

from __future__ import annotations

import io
import json

import pytest
import torch
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Role
from annotation.models import PLATFORM_CONSENSUS_METHOD, Consensus
from features.models import SAE, HookPoint, HostModel, Latent
from inference.engine.formats import save_sae
from inference.engine.saes import Normalisation, ReLUConfig, build_sae
from inference.models import Job
from tests import factories
from tests.annotation.conftest import browser_page, chromium, screenshot  # noqa: F401  (fixtures)
from tests.annotation.e2e import log_in
from tests.conftest import wait_for_job
from tests.inference.engine.tiny_hosts import tiny_gpt2

PROMPT = "patient reports chest pain radiating to the"
D_SAE = 32


@pytest.fixture(scope="module")
def tiny_causal_dir(tmp_path_factory):
    handle = tiny_gpt2()
    directory = tmp_path_factory.mktemp("tiny-gpt2")
    handle.model.save_pretrained(directory)
    handle.tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def steering_world(postgres, tiny_causal_dir, tmp_path):
    host = HostModel.objects.create(
        name="tiny-gpt2", source=str(tiny_causal_dir), kind="causal", d_model=32, n_layers=3
    )
    hook = HookPoint.objects.create(host_model=host, name="blocks.1.hook_resid_post", layer=1, site="resid_post")
    sae = build_sae(ReLUConfig(d_in=32, d_sae=D_SAE), seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(0.05)
    save_sae(sae=sae.eval(), normalisation=Normalisation(mean=torch.zeros(32), scale=1.3), directory=tmp_path / "sae")
    row = SAE.objects.create(
        name="tiny steerable",
        hook_point=hook,
        architecture="relu",
        d_in=32,
        d_sae=D_SAE,
        artifact_uri=str(tmp_path / "sae"),
    )
    latents = Latent.objects.bulk_create(Latent(sae=row, index=i) for i in range(D_SAE))
    for index, concept, posterior in (
        (3, "HF", {"HF": 0.9, "AKI": 0.1}),
        (5, "HF", {"HF": 0.6, "MI": 0.4}),
        (7, "AKI", {"AKI": 0.8, "HF": 0.2}),
    ):
        Consensus.objects.create(
            latent=latents[index],
            sae=row,
            method=PLATFORM_CONSENSUS_METHOD,
            posterior=posterior,
            map_concept=concept,
            entropy=0.5,
            n_labels=3,
        )
    # A baseline method's row must not count: only the platform's SAE-wide consensus chooses the latents.
    Consensus.objects.create(
        latent=latents[9],
        sae=row,
        method="dawid-skene",
        posterior={"HF": 1.0},
        map_concept="HF",
        entropy=0.0,
        n_labels=3,
    )
    return row


def _post(user, payload):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client.post("/api/v1/steering/", payload, format="json")


def _result(user, launched, *, timeout: float = 120.0) -> dict:
    """Wait for the worker to finish the run the 202 answer named, then read it as `user` through the API."""
    assert launched.status_code == 202, launched.content
    body = launched.json()
    assert launched["Location"] == body["url"] == f"/api/v1/steering/{body['job']}/"
    job = wait_for_job(body["job"], timeout=timeout)
    client = APIClient()
    client.force_authenticate(user)
    answer = client.get(body["url"])
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == job.status
    return answer.json()


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.PHYSICIAN, Role.COORDINATOR, None])
def test_steering_api_refuses_everyone_but_researchers_and_seniors(steering_world, role):
    user = factories.user(role=role) if role else None
    response = _post(user, {"sae": steering_world.pk, "latent": 4, "clamp": 8.0, "prompt": PROMPT, "max_new_tokens": 3})
    assert response.status_code in (401, 403), response.content
    assert not Job.objects.exists() and not AuditEvent.objects.filter(action="steering.run").exists()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.SENIOR])
def test_a_steering_run_is_queued_run_by_the_worker_and_audited(celery_worker, steering_world, role):
    user = factories.user(role=role)
    launched = _post(user, {"sae": steering_world.pk, "latent": 4, "clamp": 8.0, "prompt": PROMPT, "max_new_tokens": 3})
    assert launched.json()["status"] == "queued" and launched.json()["latents"] == [{"index": 4, "weight": 1.0}]
    body = _result(user, launched)
    assert body["status"] == "succeeded", body
    result = body["result"]
    assert result["notice"] == body["notice"] == "Research tool, not for patient care."
    assert len(result["kl"]) == len(result["baseline"]["token_ids"]) == 3
    job = Job.objects.get(pk=launched.json()["job"])
    assert job.kind == "steer" and job.queue == "gpu" and job.worker.startswith("concord-test-")
    event = AuditEvent.objects.get(action="steering.run")
    assert event.actor == user and event.payload["latents"] == [{"index": 4, "weight": 1.0}]
    assert event.payload["via"] == "API" and event.payload["job"] == job.pk


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concept_steers_its_consensus_latents_weighted_by_posterior(celery_worker, steering_world):
    researcher = factories.user(role=Role.RESEARCHER)
    launched = _post(
        researcher,
        {"sae": steering_world.pk, "concept": "HF", "scale": 6.0, "prompt": PROMPT, "max_new_tokens": 4, "seed": 11},
    )
    assert launched.json()["latents"] == [{"index": 3, "weight": 0.9}, {"index": 5, "weight": 0.6}]
    result = _result(researcher, launched)["result"]
    assert result["latents"] == [{"index": 3, "weight": 0.9}, {"index": 5, "weight": 0.6}]
    assert result["decoding"].startswith("sampled") and result["concept"] == "HF"
    missing = _post(researcher, {"sae": steering_world.pk, "concept": "CKD", "scale": 2.0, "prompt": PROMPT})
    assert missing.status_code == 400 and "no latent" in missing.json()["detail"]
    both = _post(researcher, {"sae": steering_world.pk, "latent": 1, "concept": "HF", "scale": 2.0, "prompt": PROMPT})
    assert both.status_code == 400
    out_of_range = _post(researcher, {"sae": steering_world.pk, "latent": D_SAE, "scale": 2.0, "prompt": PROMPT})
    assert out_of_range.status_code == 400 and "out of range" in out_of_range.json()["detail"]
    assert Job.objects.count() == 1  # refused requests queue nothing


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_scale_of_one_reproduces_the_baseline_through_the_worker(celery_worker, steering_world):
    senior = factories.user(role=Role.SENIOR)
    launched = _post(
        senior, {"sae": steering_world.pk, "concept": "HF", "scale": 1.0, "prompt": PROMPT, "max_new_tokens": 5}
    )
    result = _result(senior, launched)["result"]
    assert result["steered"]["token_ids"] == result["baseline"]["token_ids"] and result["kl"] == [0.0] * 5


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_failed_run_shows_its_error_and_a_run_is_seen_only_by_who_may(celery_worker, steering_world, client):
    home, elsewhere = factories.institution("home"), factories.institution("elsewhere")
    author = factories.user(role=Role.RESEARCHER, institution_obj=home, username="author")
    colleague = factories.user(role=Role.RESEARCHER, institution_obj=home, username="colleague")
    senior = factories.user(role=Role.SENIOR, institution_obj=home, username="senior-home")
    stranger = factories.user(role=Role.RESEARCHER, institution_obj=elsewhere, username="stranger")
    physician = factories.user(role=Role.PHYSICIAN, institution_obj=home, username="physician-home")
    too_long = " ".join(["pain"] * 400)  # more prompt tokens than the engine accepts: the worker refuses it
    body = _result(author, _post(author, {"sae": steering_world.pk, "latent": 1, "scale": 2.0, "prompt": too_long}))
    assert body["status"] == "failed" and "at most 256" in body["error"], body
    url = f"/api/v1/steering/{body['job']}/"
    for user, expected in ((colleague, 200), (senior, 404), (stranger, 404), (physician, 403)):
        api = APIClient()
        api.force_authenticate(user)
        assert api.get(url).status_code == expected, user.username
    client.force_login(author)
    page = client.get(f"/steering/{body['job']}/").content.decode()
    assert 'id="steering-error"' in page and "at most 256" in page
    client.force_login(stranger)
    assert client.get(f"/steering/{body['job']}/").status_code == 404


@pytest.mark.django_db
def test_steer_command_prints_json_and_is_audited(steering_world):
    out = io.StringIO()
    call_command(
        "steer",
        "--sae",
        str(steering_world.pk),
        "--latent",
        "2",
        "--clamp",
        "30",
        "--prompt",
        PROMPT,
        "--max-new-tokens",
        "4",
        "--json",
        stdout=out,
        stderr=io.StringIO(),
    )
    body = json.loads(out.getvalue())
    assert body["latents"] == [{"index": 2, "weight": 1.0}] and len(body["kl"]) == 4
    assert max(body["kl"]) > 0  # clamping a latent to 30 moves the next-token distribution
    event = AuditEvent.objects.get(action="steering.run")
    assert event.actor is None and event.payload["via"] == "command line"


@pytest.mark.e2e
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_senior_steers_from_the_page_through_the_worker_and_a_physician_cannot(
    celery_worker,
    steering_world,
    live_server,
    browser_page,  # noqa: F811
):
    institution = factories.institution("steer")
    factories.user(role=Role.SENIOR, institution_obj=institution, username="senior-steer")
    factories.user(role=Role.PHYSICIAN, institution_obj=institution, username="dr-steer")
    page, base = browser_page, live_server.url
    log_in(page, base, "dr-steer")
    response = page.goto(f"{base}/steering/")
    assert response.status == 403
    assert page.locator("#nav-steering").count() == 0
    page.context.clear_cookies()
    log_in(page, base, "senior-steer")
    page.click("#nav-steering")
    assert page.locator("#research-notice").inner_text() == "Research tool, not for patient care."
    page.select_option("#id_sae", label="tiny steerable")
    page.fill("#id_concept", "HF")
    page.fill("#id_scale", "8")
    page.fill("#id_prompt", PROMPT)
    page.fill("#id_max_new_tokens", "4")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/steering/*/")
    assert page.locator(".errorlist, #steering-error").count() == 0, page.locator("main").inner_text()
    job = Job.objects.get(kind="steer")
    assert page.url == f"{base}/steering/{job.pk}/"
    # The worker runs it; the page polls and then shows the result (loads the host model on the first run).
    page.wait_for_selector("#steering-result", timeout=90_000)
    assert "#3 (weight 0.90)" in page.locator("#steering-result").inner_text()
    assert page.locator("#kl-table tr").count() == 5  # header + 4 positions
    assert page.locator("#baseline-text").inner_text().startswith(PROMPT)
    assert page.locator("#steered-text").inner_text().startswith(PROMPT)
    screenshot(page, "steering-page")
    job.refresh_from_db()
    assert job.status == "succeeded" and job.worker.startswith("concord-test-")
    assert AuditEvent.objects.filter(action="steering.run", actor__username="senior-steer").count() == 1
    page.goto(f"{base}/steering/")
    assert page.locator(f"#steering-runs a[href='/steering/{job.pk}/']").count() == 1


@pytest.mark.django_db
def test_a_senior_steers_by_concept_only_through_revealed_rounds(steering_world):
    # Latent 3 (HF, 0.9) sits in a closed round that is not revealed: its consensus is still blind to raters.
    from annotation.models import Round
    from config.steering import steering_latents
    from tests.annotation import worlds

    coordinator = factories.user(role=Role.COORDINATOR)
    closed = Round.objects.create(
        name="closed, not revealed",
        kind=Round.Kind.CALIBRATION,
        sae=steering_world,
        rubric_version=worlds.rubric(by=coordinator),
        coordinator=coordinator,
        status=Round.Status.CLOSED,
    )
    closed.latents.add(steering_world.latents.get(index=3))
    senior, researcher = factories.user(role=Role.SENIOR), factories.user(role=Role.RESEARCHER)
    assert set(steering_latents(sae=steering_world, concept_code="HF", viewer=researcher)) == {3, 5}
    assert set(steering_latents(sae=steering_world, concept_code="HF", viewer=senior)) == {5}
    closed.status = Round.Status.REVEALED
    closed.save(update_fields=["status"])
    assert set(steering_latents(sae=steering_world, concept_code="HF", viewer=senior)) == {3, 5}


def test_the_web_side_of_steering_never_imports_torch():
    """The URL conf, the steering pages and API, and the job's request side load without torch: a steering
    run's torch work happens on the worker (or in `manage.py steer`)."""
    from tests.conftest import loads_torch

    code = (
        "from django.urls import get_resolver\n"
        "def walk(patterns):\n"
        "    for p in patterns:\n"
        "        walk(getattr(p, 'url_patterns', []))\n"
        "walk(get_resolver().url_patterns)\n"
        "import config.steering, config.steering_views, inference.steering, inference.registry"
    )
    assert not loads_torch(code)
