"""Explaining a note on a tiny host model: spans line up with the text, latents equal a direct encode."""

from __future__ import annotations

import torch

from inference.engine.explain import ExplainConfig, explain_note
from inference.engine.hooks import (
    capturing,
    kept_token_mask,
    model_inputs,
    run_to_hooks,
    tokenize,
)
from inference.engine.saes import build_sae, config_from_dict

from .tiny_hosts import tiny_bert

HOOK = "blocks.1.hook_resid_post"
NOTE = "patient reports chest pain radiating to the left arm ,  with diaphoresis and nausea"


def _sae():
    return build_sae(config_from_dict({"architecture": "topk", "d_in": 32, "d_sae": 64, "k": 4}), seed=0).eval()


def test_tokens_carry_their_character_spans_and_the_saes_active_latents():
    handle, sae = tiny_bert(), _sae()
    result = explain_note(handle=handle, encoders={HOOK: sae.encode}, text=NOTE, device="cpu")
    assert [token.text for token in result.tokens] == NOTE.split()
    assert all(NOTE[token.start : token.end] == token.text for token in result.tokens)
    encoding = tokenize(handle.tokenizer, [NOTE], max_length=64, offsets=False)
    with torch.inference_mode(), capturing(handle.model, [HOOK]) as captured:
        run_to_hooks(handle.model, model_inputs(encoding, torch.device("cpu"), causal=False))
        z = sae.encode(captured[HOOK][kept_token_mask(encoding)])
    for position, token in enumerate(result.tokens):
        expected = {int(i): float(z[position, i]) for i in torch.nonzero(z[position] > 0).flatten()}
        assert {latent.index: latent.activation for latent in token.latents[HOOK]} == {
            i: torch.tensor(v).item() for i, v in expected.items()
        }
        activations = [latent.activation for latent in token.latents[HOOK]]
        assert activations == sorted(activations, reverse=True) and len(activations) == 4


def test_a_long_note_is_cut_into_windows_and_keeps_every_token_in_order():
    handle = tiny_bert()
    text = " ".join([NOTE] * 5)
    result = explain_note(
        handle=handle,
        encoders={HOOK: _sae().encode},
        text=text,
        device="cpu",
        config=ExplainConfig(max_length=16, max_latents_per_token=2),
    )
    assert result.n_windows > 1
    assert [token.text for token in result.tokens] == text.split()
    assert [token.start for token in result.tokens] == sorted(token.start for token in result.tokens)
    assert all(len(token.latents[HOOK]) <= 2 for token in result.tokens)


def test_several_hooks_in_one_pass_and_an_empty_note():
    handle = tiny_bert()
    encoders = {"blocks.0.hook_resid_post": _sae().encode, HOOK: _sae().encode}
    result = explain_note(handle=handle, encoders=encoders, text=NOTE, device="cpu")
    assert all(set(token.latents) == set(encoders) for token in result.tokens)
    assert explain_note(handle=handle, encoders=encoders, text="   ", device="cpu").tokens == []


def test_a_note_longer_than_the_models_positions_takes_overlapping_windows():
    """tiny BERT has 64 position embeddings: a 200-word note used to raise an index error. Windows now
    respect the model's limit, overlap, and every token's latents come from the window where it is most
    central, equal to running that window alone."""
    from inference.engine.explain import _specials, most_central_window, position_limit, window_starts

    handle, sae = tiny_bert(), _sae()
    words = (NOTE.split() * 20)[:200]
    text = " ".join(words)
    assert position_limit(handle) == 64
    result = explain_note(handle=handle, encoders={HOOK: sae.encode}, text=text, device="cpu")
    assert result.window_tokens == 62 and result.stride == 31 and result.n_windows == 6
    assert [token.text for token in result.tokens] == words
    assert all(text[token.start : token.end] == token.text for token in result.tokens)
    starts = window_starts(len(words), 62, 31)
    assert starts[-1] + 62 == len(words) and all(b - a == 31 for a, b in zip(starts[:-2], starts[1:-1], strict=True))
    prefix, suffix = _specials(handle.tokenizer)
    ids = handle.tokenizer(text, add_special_tokens=False)["input_ids"]
    for position in (0, 30, 31, 46, 61, 62, 100, 199):  # near and away from the cuts
        window = most_central_window(position, starts, 62, len(words), causal=False)
        start = starts[window]
        if 0 < start and start + 62 < len(words):
            assert min(position - start, start + 61 - position) >= 15  # context on both sides of a cut
        row = torch.tensor([prefix + ids[start : start + 62] + suffix])
        with torch.inference_mode(), capturing(handle.model, [HOOK]) as captured:
            run_to_hooks(handle.model, {"input_ids": row, "attention_mask": torch.ones_like(row)})
            z = sae.encode(captured[HOOK][0, len(prefix) + position - start][None])[0]
        expected = {int(i): float(z[i]) for i in torch.nonzero(z > 0).flatten()}
        got = {latent.index: latent.activation for latent in result.tokens[position].latents[HOOK]}
        assert got.keys() == expected.keys() and all(abs(got[i] - expected[i]) < 1e-5 for i in got)
