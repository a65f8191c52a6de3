"""Hook points in SAELens/TransformerLens naming, forward hooks that are always removed, and
activation capture from a host model into the shard store.

Which module output each site is, per architecture family (eval mode, so dropout is the identity):

| site        | BERT-like (post-LN)                   | GPT-2                  | Llama/Mistral/Qwen        |
|-------------|---------------------------------------|------------------------|---------------------------|
| resid_post  | encoder.layer[L] = hidden_states[L+1] | transformer.h[L]       | model.layers[L]           |
| attn_out    | encoder.layer[L].attention.output.dense | transformer.h[L].attn | model.layers[L].self_attn |
| mlp_out     | encoder.layer[L].output.dense         | transformer.h[L].mlp   | model.layers[L].mlp       |

attn_out and mlp_out are what the sublayer adds to the residual stream. For BERT-likes,
resid_post is the block output after its second LayerNorm (what `output_hidden_states` returns and
what MedSAE studied); TransformerLens's BERT calls that `hook_normalized_resid_post`. For
pre-LN decoders, resid_post of the last layer is before the final norm, so it equals
`hidden_states[L+1]` for every layer but the last (transformers applies the final norm there).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inference.engine.activations import (
    TOKEN_COLUMNS,
    VOCAB_FILE,
    ActivationManifest,
    Progress,
    ShardWriter,
)
from inference.engine.host_models import HostModelHandle

SITES: tuple[str, ...] = ("resid_post", "attn_out", "mlp_out")
_HOOK_NAME = re.compile(r"^blocks\.(\d+)\.hook_([a-z_]+)$")

# Dotted paths from the loaded model to its list of transformer blocks, most common first.
_BLOCK_LISTS = (
    "encoder.layer",  # BertModel, RobertaModel, ElectraModel (AutoModel)
    "bert.encoder.layer",
    "roberta.encoder.layer",
    "transformer.h",  # GPT-2, GPT-J, Bloom
    "model.layers",  # Llama, Mistral, Qwen, Gemma, Phi-3 (ForCausalLM)
    "layers",  # their bare models, ModernBERT
    "gpt_neox.layers",
    "model.decoder.layers",  # OPT
    "transformer.layer",  # DistilBERT
    "distilbert.transformer.layer",
)
# Inside one block, the module whose output is the site; first match wins, so BERT's
# `attention.output.dense` is tried before the `attention` of GPT-NeoX and DistilBERT.
_SITE_MODULES = {
    "attn_out": ("attention.output.dense", "attn", "self_attn", "self_attention", "attention"),
    "mlp_out": ("mlp", "output.dense", "ffn", "feed_forward"),
}


@dataclass(frozen=True)
class HookPoint:
    layer: int
    site: str

    @property
    def name(self) -> str:
        return hook_name(self.layer, self.site)


def hook_name(layer: int, site: str) -> str:
    if site not in SITES:
        raise ValueError(f"unknown hook site {site!r}; known sites: {', '.join(SITES)}")
    return f"blocks.{layer}.hook_{site}"


def parse_hook_name(name: str, *, n_layers: int | None = None) -> HookPoint:
    """`blocks.{L}.hook_{site}` -> HookPoint; checks the layer against `n_layers` when given."""
    match = _HOOK_NAME.match(name)
    if match is None:
        raise ValueError(
            f"hook name {name!r} is not of the form blocks.<layer>.hook_<site> with site one of {', '.join(SITES)}"
        )
    layer, site = int(match.group(1)), match.group(2)
    if site not in SITES:
        raise ValueError(f"unknown hook site {site!r} in {name!r}; known sites: {', '.join(SITES)}")
    if n_layers is not None and not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} in {name!r} is out of range: the model has layers 0..{n_layers - 1}")
    return HookPoint(layer=layer, site=site)


def _get_path(module: torch.nn.Module, path: str) -> torch.nn.Module | None:
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def transformer_blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for path in _BLOCK_LISTS:
        blocks = _get_path(model, path)
        if isinstance(blocks, torch.nn.ModuleList) and (n_layers is None or len(blocks) == n_layers):
            return blocks
    if n_layers is not None:  # an unlisted architecture: the one ModuleList with a block per layer
        for _, module in model.named_modules():
            if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
                return module
    raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")


def resolve_hook_module(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """The submodule whose forward output is the activation at hook point `name`."""
    blocks = transformer_blocks(model)
    point = parse_hook_name(name, n_layers=len(blocks))
    block = blocks[point.layer]
    if point.site == "resid_post":
        return block
    for path in _SITE_MODULES[point.site]:
        module = _get_path(block, path)
        if isinstance(module, torch.nn.Module):
            return module
    raise ValueError(f"cannot find the {point.site} module in {type(block).__name__} of {type(model).__name__}")


def output_tensor(output: Any) -> torch.Tensor:
    """The hidden-state tensor of a module output (attention modules return (output, weights))."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot read a hidden-state tensor from a module output of type {type(output).__name__}")


def replace_output(output: Any, tensor: torch.Tensor) -> Any:
    if isinstance(output, torch.Tensor):
        return tensor
    return type(output)((tensor, *output[1:])) if isinstance(output, tuple) else [tensor, *output[1:]]


@contextmanager
def forward_hooks(hooks: Sequence[tuple[torch.nn.Module, Callable[..., Any]]]) -> Iterator[None]:
    """Register forward hooks for the duration of the block; they are removed in `finally`, so an
    exception in the forward pass (or in a hook) never leaves a hook behind on a shared model."""
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


class _StopForward(Exception):
    """Raised by the last capture hook to skip the layers nobody asked for."""


@contextmanager
def capturing(
    model: torch.nn.Module, hook_names: Sequence[str], *, stop_early: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Yields a dict that each forward pass fills with hook name -> activation [batch, seq, d].

    With `stop_early`, the pass is cut after every hooked module has run; run it inside
    `run_to_hooks` so that the private stop signal is swallowed.
    """
    modules = {name: resolve_hook_module(model, name) for name in hook_names}
    captured: dict[str, torch.Tensor] = {}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            captured[name] = output_tensor(output).detach()
            if stop_early and len(captured) == len(modules):
                raise _StopForward

        return hook

    with forward_hooks([(module, make_hook(name)) for name, module in modules.items()]):
        yield captured


def run_to_hooks(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor]) -> None:
    try:
        model(**inputs)
    except _StopForward:
        pass


def model_inputs(encoding: Mapping[str, Any], device: torch.device, *, causal: bool) -> dict[str, Any]:
    inputs: dict[str, Any] = {key: encoding[key].to(device) for key in ("input_ids", "attention_mask")}
    if causal:
        # GPT-2 adds wte(token_type_ids) when given them, so a decoder never gets them
        inputs["use_cache"] = False
    elif "token_type_ids" in encoding:
        inputs["token_type_ids"] = encoding["token_type_ids"].to(device)
    return inputs


def tokenize(tokenizer: Any, texts: Sequence[str], *, max_length: int, offsets: bool) -> Any:
    return tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_special_tokens_mask=True,
        return_offsets_mapping=offsets,
    )


def kept_token_mask(encoding: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """bool [batch, seq]: real tokens that are not special tokens."""
    return encoding["attention_mask"].bool() & ~encoding["special_tokens_mask"].bool()


def _display_string(tokenizer: Any, token_id: int) -> str:
    return tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)


_FLOAT16_MAX = 65504.0


def _to_store_dtype(values: torch.Tensor, dtype_name: str, name: str) -> np.ndarray:
    """[n, d] on the model's device -> numpy in the store dtype, converted before the copy to host."""
    if dtype_name == "float16":
        largest = float(values.abs().max()) if values.numel() else 0.0
        if not largest <= _FLOAT16_MAX:  # also catches NaN
            raise ValueError(
                f"{name} has an activation of magnitude {largest:g}, beyond float16; capture with dtype=float32"
            )
        return values.to(torch.float16).cpu().numpy()
    return values.to(torch.float32).cpu().numpy()


def _report(progress: Progress | None, done: int, n_texts: int, n_tokens: int) -> None:
    if progress is not None:
        done = min(n_texts, done)
        progress(done / n_texts, f"{done}/{n_texts} snippets, {n_tokens} tokens")


def capture_activations(
    *,
    handle: HostModelHandle,
    texts: Sequence[str],
    hook_names: list[str],
    batch_size: int,
    max_length: int,
    device: torch.device | str,
    out_dir: str | Path,
    shard_tokens: int = 1 << 16,
    dtype: type | np.dtype | str = np.float16,
    progress: Progress | None = None,
    stop_early: bool = True,
) -> ActivationManifest:
    """Run the host model over `texts` and write the activations at `hook_names` to `out_dir` in
    the layout described in `activations.py`. Snippet i of the store is `texts[i]`.

    `out_dir` must be empty or absent. On any error (a raise from `progress` is how a caller
    cancels) every file written so far is deleted and the error propagates. The model must already
    sit on `device`.
    """
    dtype_name = np.dtype(dtype).name
    if dtype_name not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype_name}")
    if batch_size < 1 or max_length < 2:
        raise ValueError("batch_size must be >= 1 and max_length >= 2")
    if not texts:
        raise ValueError("texts is empty")
    if not hook_names:
        raise ValueError("hook_names is empty")
    if len(set(hook_names)) != len(hook_names):
        raise ValueError("hook_names repeats a name")
    for name in hook_names:
        parse_hook_name(name, n_layers=handle.n_layers)
    device = torch.device(device)
    out_dir = Path(out_dir)
    created_out_dir = not out_dir.exists()
    if not created_out_dir and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer, model = handle.tokenizer, handle.model
    offsets_available = bool(getattr(tokenizer, "is_fast", False))
    writer = ShardWriter(
        out_dir, {name: handle.d_model for name in hook_names}, dtype=dtype_name, shard_tokens=shard_tokens
    )
    vocabulary: dict[int, str] = {}
    n_special = n_truncated = 0
    n_texts = len(texts)
    try:
        with torch.inference_mode(), capturing(model, hook_names, stop_early=stop_early) as captured:
            for batch_start in range(0, n_texts, batch_size):
                batch_texts = texts[batch_start : batch_start + batch_size]
                encoding = tokenize(tokenizer, batch_texts, max_length=max_length, offsets=offsets_available)
                keep = kept_token_mask(encoding)
                n_special += int((encoding["attention_mask"].bool() & encoding["special_tokens_mask"].bool()).sum())
                if offsets_available:
                    n_truncated += sum(1 for item in encoding.encodings if item.overflowing)
                captured.clear()
                if encoding["input_ids"].shape[1] == 0:  # every text empty and no special tokens
                    _report(progress, batch_start + batch_size, n_texts, writer.n_tokens)
                    continue
                run_to_hooks(model, model_inputs(encoding, device, causal=handle.kind == "causal"))
                if len(captured) != len(hook_names):
                    raise RuntimeError(f"hooks {sorted(set(hook_names) - set(captured))} did not fire")

                for name in hook_names:
                    if captured[name].shape[-1] != handle.d_model:
                        raise RuntimeError(
                            f"{name} gave width {captured[name].shape[-1]}, expected d_model={handle.d_model}"
                        )
                rows, cols = keep.nonzero(as_tuple=True)
                input_ids = encoding["input_ids"][rows, cols]
                table = np.full((len(rows), len(TOKEN_COLUMNS)), -1, dtype=np.int32)
                table[:, 0] = (rows + batch_start).numpy()
                table[:, 1] = cols.numpy()
                table[:, 2] = input_ids.numpy()
                if offsets_available:
                    table[:, 3:5] = encoding["offset_mapping"][rows, cols].numpy()
                keep_device = keep.to(device)
                activations = {
                    name: _to_store_dtype(captured[name][keep_device], dtype_name, name) for name in hook_names
                }
                writer.append(table, activations)
                for token_id in np.unique(table[:, 2]).tolist():
                    if token_id not in vocabulary:
                        vocabulary[token_id] = _display_string(tokenizer, token_id)
                _report(progress, batch_start + batch_size, n_texts, writer.n_tokens)
        shards = writer.finish()
        (out_dir / VOCAB_FILE).write_text(json.dumps({str(k): v for k, v in sorted(vocabulary.items())}))
        manifest = ActivationManifest(
            directory=str(out_dir),
            n_snippets=n_texts,
            n_tokens=writer.n_tokens,
            dtype=dtype_name,
            hooks={name: handle.d_model for name in hook_names},
            shards=tuple(shards),
            max_length=max_length,
            model={
                "source": handle.source,
                "revision": handle.revision,
                "kind": handle.kind,
                "d_model": handle.d_model,
                "n_layers": handle.n_layers,
            },
            n_special_excluded=n_special,
            n_truncated_snippets=n_truncated,
        )
        manifest.write()
        return manifest
    except BaseException:
        writer.abort()
        (out_dir / VOCAB_FILE).unlink(missing_ok=True)
        if created_out_dir:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
