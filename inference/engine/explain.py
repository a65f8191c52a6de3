"""Explaining one note: tokens with character spans, run through the host model to one or more hook
points and their SAEs, and the active latents of every token (pure torch; labels come later)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from inference.engine.hooks import (
    capturing,
    model_inputs,
    parse_hook_name,
    run_to_hooks,
)
from inference.engine.host_models import HostModelHandle

Encode = Callable[[torch.Tensor], torch.Tensor]  # raw activations [n, d_in] -> z [n, d_sae]


@dataclass(frozen=True)
class ExplainConfig:
    """How a note is cut and what counts as an active latent."""

    max_length: int = 512  # tokens per window, special tokens included; longer notes take several windows
    min_activation: float = 0.0  # a latent is active on a token where z > min_activation
    max_latents_per_token: int | None = None  # keep only the strongest; None keeps every active latent

    def __post_init__(self) -> None:
        if self.max_length < 4:
            raise ValueError("max_length must be at least 4")
        if self.min_activation < 0:
            raise ValueError("min_activation must be >= 0")
        if self.max_latents_per_token is not None and self.max_latents_per_token < 1:
            raise ValueError("max_latents_per_token must be positive or None")


@dataclass(frozen=True)
class ActiveLatent:
    index: int
    activation: float


@dataclass(frozen=True)
class ExplainedToken:
    """One kept token: its text is `note[start:end]`; `latents` per hook name, strongest first."""

    text: str
    start: int
    end: int
    latents: dict[str, list[ActiveLatent]] = field(default_factory=dict)


@dataclass(frozen=True)
class NoteActivations:
    tokens: list[ExplainedToken]
    n_windows: int

    def latent_maxima(self, hook_name: str) -> dict[int, float]:
        """Each latent's largest activation over the note at one hook."""
        best: dict[int, float] = {}
        for token in self.tokens:
            for latent in token.latents.get(hook_name, []):
                if latent.activation > best.get(latent.index, 0.0):
                    best[latent.index] = latent.activation
        return best


def _windows(tokenizer, text: str, max_length: int):
    """Tokenise `text` with character offsets; a note longer than the model's window becomes several
    windows (fast tokenizers' overflow), each with offsets into the whole note."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("explaining a note needs a fast tokenizer (character offsets)")
    return tokenizer(
        [text],
        truncation=True,
        max_length=max_length,
        return_overflowing_tokens=True,
        stride=0,
        padding=True,
        return_tensors="pt",
        return_special_tokens_mask=True,
        return_offsets_mapping=True,
    )


@torch.inference_mode()
def explain_note(
    *,
    handle: HostModelHandle,
    encoders: Mapping[str, Encode],
    text: str,
    device: torch.device | str,
    config: ExplainConfig = ExplainConfig(),
) -> NoteActivations:
    """Active latents of every token of `text` at each hook name of `encoders` (hook name -> the SAE's
    encode on raw activations, normalisation included). One forward pass serves every hook and stops
    after the deepest one."""
    if not encoders:
        raise ValueError("encoders is empty: name at least one hook point and its SAE")
    for name in encoders:
        parse_hook_name(name, n_layers=handle.n_layers)
    if not text.strip():
        return NoteActivations(tokens=[], n_windows=0)
    device = torch.device(device)
    limit = min(
        config.max_length, int(getattr(handle.tokenizer, "model_max_length", config.max_length) or config.max_length)
    )
    encoding = _windows(handle.tokenizer, text, limit)
    keep = encoding["attention_mask"].bool() & ~encoding["special_tokens_mask"].bool()
    offsets = encoding["offset_mapping"]
    hook_names = list(encoders)
    with capturing(handle.model, hook_names, stop_early=True) as captured:
        run_to_hooks(handle.model, model_inputs(encoding, device, causal=handle.kind == "causal"))
    rows, cols = keep.nonzero(as_tuple=True)  # window-major, position order: the note's token order
    spans = offsets[rows, cols].tolist()
    per_hook: dict[str, tuple[list[list[int]], list[list[float]]]] = {}
    keep_device = keep.to(device)
    for name, encode in encoders.items():
        z = encode(captured[name][keep_device].float()).float()  # [n_tokens, d_sae]
        mask = z > config.min_activation
        counts = mask.sum(dim=1)
        width = int(counts.max()) if counts.numel() else 0
        if config.max_latents_per_token is not None:
            width = min(width, config.max_latents_per_token)
        if width == 0:
            per_hook[name] = ([[] for _ in spans], [[] for _ in spans])
            continue
        values, indices = torch.where(mask, z, torch.zeros_like(z)).topk(width, dim=1)
        n_keep = counts.clamp(max=width).tolist()
        values, indices = values.cpu().tolist(), indices.cpu().tolist()
        per_hook[name] = (
            [row[:n] for row, n in zip(indices, n_keep, strict=False)],
            [row[:n] for row, n in zip(values, n_keep, strict=False)],
        )
    tokens = []
    seen: set[tuple[int, int]] = set()
    for position, (start, end) in enumerate(spans):
        if (start, end) in seen:  # no stride: windows never overlap, but guard against repeated offsets
            continue
        seen.add((start, end))
        tokens.append(
            ExplainedToken(
                text=text[start:end],
                start=int(start),
                end=int(end),
                latents={
                    name: [
                        ActiveLatent(index=i, activation=v)
                        for i, v in zip(per_hook[name][0][position], per_hook[name][1][position], strict=False)
                    ]
                    for name in hook_names
                },
            )
        )
    return NoteActivations(tokens=tokens, n_windows=int(encoding["input_ids"].shape[0]))
