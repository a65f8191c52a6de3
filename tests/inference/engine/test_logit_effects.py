"""Logit effects: a latent's decoder direction through the final norm and the unembedding."""

from __future__ import annotations

import pytest
import torch

from inference.engine.host_models import unembedding_with_final_norm
from inference.engine.mining import logit_effects
from tests.inference.engine.tiny_hosts import tiny_gemma3, tiny_gpt2, tiny_llama


def _randomise_norm_gains(model: torch.nn.Module) -> None:
    # Freshly built norms have gain 1 (or Gemma's 0, meaning 1): give them a shape so folding matters.
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in model.modules():
            if "Norm" in type(module).__name__ and getattr(module, "weight", None) is not None:
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 2 - 0.5)


@pytest.mark.parametrize(
    "build, norm_path",
    [(tiny_gpt2, "transformer.ln_f"), (tiny_llama, "model.norm"), (tiny_gemma3, "model.norm")],
    ids=["gpt2", "llama", "gemma3"],
)
def test_logit_effects_match_the_models_own_final_norm_and_head(build, norm_path):
    handle = build()
    model = handle.model
    _randomise_norm_gains(model)
    norm = model.get_submodule(norm_path)
    directions = torch.randn(12, handle.d_model, generator=torch.Generator().manual_seed(3))
    unembedding, centre, method = unembedding_with_final_norm(model)
    assert ("mean-centred" in method) == centre == (build is tiny_gpt2)
    effects = logit_effects(directions=directions, unembedding=unembedding, centre=centre, k=5, chunk_latents=5)

    # Independent: the model's own modules on the direction alone, less what they give for zero
    # (LayerNorm's bias), times the per-token RMS / std that `logit_effects` leaves out.
    with torch.no_grad():
        reference = model.lm_head(norm(directions)) - model.lm_head(norm(torch.zeros_like(directions)))
    spread = directions - directions.mean(dim=1, keepdim=True) if centre else directions
    eps = getattr(norm, "eps", getattr(norm, "variance_epsilon", 1e-6))
    if centre:
        rms = (spread.pow(2).mean(dim=1, keepdim=True) + eps).sqrt()
    else:
        rms = (directions.pow(2).mean(dim=1, keepdim=True) + eps).sqrt()
    expected = reference * rms
    top = expected.topk(5, dim=1)
    bottom = expected.topk(5, dim=1, largest=False)
    assert torch.equal(effects.raised_ids, top.indices) and torch.equal(effects.lowered_ids, bottom.indices)
    torch.testing.assert_close(effects.raised, top.values, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(effects.lowered, bottom.values, atol=1e-4, rtol=1e-4)
    assert bool((effects.raised[:, 0] >= effects.raised[:, -1]).all()) and bool((effects.lowered < 0).all())


def test_logit_effects_reject_a_mismatched_unembedding():
    with pytest.raises(ValueError, match="d_in=8"):
        logit_effects(directions=torch.zeros(3, 8), unembedding=torch.zeros(10, 9))
