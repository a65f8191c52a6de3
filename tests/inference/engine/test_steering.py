"""Steering: SAE interventions at a hook point of a causal host, with the error term kept."""

from __future__ import annotations

import pytest
import torch

from inference.engine.hooks import transformer_blocks
from inference.engine.saes import Normalisation, NormalisedSAE, ReLUConfig, build_sae
from inference.engine.steering import GenerationConfig, Intervention, steer
from tests.inference.engine.tiny_hosts import tiny_gpt2, tiny_llama

HOOK = "blocks.0.hook_resid_post"
PROMPT = "patient reports chest pain radiating to the"


def sae_for(handle) -> NormalisedSAE:
    sae = build_sae(ReLUConfig(d_in=handle.d_model, d_sae=64), seed=1)
    with torch.no_grad():
        sae.b_enc.fill_(0.05)  # some latents fire on every token
    generator = torch.Generator().manual_seed(2)
    return NormalisedSAE(
        sae.eval(), Normalisation(mean=torch.randn(handle.d_model, generator=generator) * 0.1, scale=1.7)
    ).eval()


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama], ids=["gpt2", "llama"])
@pytest.mark.parametrize("seed", [None, 3], ids=["greedy", "sampled"])
@pytest.mark.parametrize(
    "intervention",
    [
        Intervention(latents={5: 1.0}, scale=1.0),
        Intervention(latents={5: 0.0, 9: 0.0}, clamp=40.0),  # weight 0: the concept's latents are left as they are
    ],
    ids=["scale-1", "weight-0"],
)
def test_zero_intervention_reproduces_the_baseline_exactly(build, seed, intervention):
    handle = build()
    sae = sae_for(handle)
    result = steer(
        handle=handle,
        hook_name=HOOK,
        encode=sae.encode,
        decode=sae.decode,
        intervention=intervention,
        prompt=PROMPT,
        generation=GenerationConfig(max_new_tokens=6, seed=seed),
    )
    assert result.edited_positions > 0  # the hook ran on the real tokens
    assert result.steered.token_ids == result.baseline.token_ids and len(result.baseline.token_ids) == 6
    assert result.kl == [0.0] * 6


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama], ids=["gpt2", "llama"])
def test_clamping_a_latent_adds_its_decoder_direction_and_moves_the_distribution(build):
    handle = build()
    sae = sae_for(handle)
    latent, value = 7, 25.0
    next_block = transformer_blocks(handle.model)[1]
    with torch.no_grad():
        ids = handle.tokenizer([PROMPT], return_tensors="pt")["input_ids"]
        clean = {}
        hook = transformer_blocks(handle.model)[0].register_forward_hook(
            lambda _m, _i, output: clean.setdefault("h", (output[0] if isinstance(output, tuple) else output).clone())
        )
        handle.model(input_ids=ids, use_cache=False)
        hook.remove()
        z = sae.encode(clean["h"][0, 1:])  # position 0 is <s>, never edited
        expected = clean["h"][0].clone()
        expected[1:] += (value - z[:, latent])[:, None] * sae.sae.W_dec[latent] / sae.scale

        intervention = Intervention(latents={latent: 1.0}, clamp=value)
        baseline_only = steer(
            handle=handle,
            hook_name=HOOK,
            encode=sae.encode,
            decode=sae.decode,
            intervention=intervention,
            prompt=PROMPT,
            generation=GenerationConfig(max_new_tokens=1),
        )
        # The next block's input, pass by pass: [baseline over the prompt, steered over the prompt, ...].
        passes: list[torch.Tensor] = []
        handle_pre = next_block.register_forward_pre_hook(
            lambda _m, args, kwargs: passes.append((args[0] if args else kwargs["hidden_states"]).clone()),
            with_kwargs=True,
        )
        try:
            result = steer(
                handle=handle,
                hook_name=HOOK,
                encode=sae.encode,
                decode=sae.decode,
                intervention=intervention,
                prompt=PROMPT,
                generation=GenerationConfig(max_new_tokens=1),
            )
        finally:
            handle_pre.remove()
    assert baseline_only.kl == result.kl
    steered_prompt_pass = passes[1][0]
    torch.testing.assert_close(steered_prompt_pass, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(passes[0][0], clean["h"][0])  # the baseline pass is untouched
    assert result.kl[0] > 1e-3


def test_intervention_rules():
    z = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.equal(Intervention(latents={1: 1.0}, clamp=5.0).apply(z), torch.tensor([[1.0, 5.0, 3.0]]))
    assert torch.equal(Intervention(latents={1: 0.5}, clamp=6.0).apply(z), torch.tensor([[1.0, 4.0, 3.0]]))
    assert torch.equal(Intervention(latents={2: 1.0}, scale=0.0).apply(z), torch.tensor([[1.0, 2.0, 0.0]]))
    assert torch.equal(Intervention(latents={2: 0.5}, scale=3.0).apply(z), torch.tensor([[1.0, 2.0, 6.0]]))
    with pytest.raises(ValueError, match="exactly one"):
        Intervention(latents={0: 1.0}, clamp=1.0, scale=2.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Intervention(latents={0: 1.5}, clamp=1.0)
    with pytest.raises(ValueError, match="out of range"):
        Intervention(latents={9: 1.0}, clamp=1.0).apply(z)


def test_steering_refuses_an_encoder():
    from tests.inference.engine.tiny_hosts import tiny_bert

    handle = tiny_bert()
    sae = sae_for(handle)
    with pytest.raises(ValueError, match="causal"):
        steer(
            handle=handle,
            hook_name=HOOK,
            encode=sae.encode,
            decode=sae.decode,
            intervention=Intervention(latents={0: 1.0}, clamp=1.0),
            prompt="afebrile",
            generation=GenerationConfig(max_new_tokens=2),
        )
