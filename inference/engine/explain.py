"""Explaining one note: tokens with character spans, run through the host model to one or more hook
points and their SAEs, and the active latents of every token (pure torch; labels come later)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from inference.engine.hooks import capturing, model_inputs, parse_hook_name, run_to_hooks
from inference.engine.host_models import HostModelHandle

Encode = Callable[[torch.Tensor], torch.Tensor]  # raw activations [n, d_in] -> z [n, d_sae]

# Models whose position ids start after the padding index (RoBERTa's family): max_position_embeddings
# counts pad_token_id + 1 positions that a sequence cannot use.
_OFFSET_POSITION_MODELS = frozenset({"roberta", "xlm-roberta", "camembert", "longformer", "mpnet"})
# A tokenizer's model_max_length above this is transformers' "no limit" placeholder.
_UNBOUNDED = 1_000_000


@dataclass(frozen=True)
class ExplainConfig:
    """How a note is cut into windows and what counts as an active latent."""

    max_length: int = 512  # tokens per window, special tokens included; capped by the model's positions
    stride: int = 128  # tokens that consecutive windows share (at most half of a window's content)
    min_activation: float = 0.0  # a latent is active on a token where z > min_activation
    max_latents_per_token: int | None = None  # keep only the strongest; None keeps every active latent

    def __post_init__(self) -> None:
        if self.max_length < 4:
            raise ValueError("max_length must be at least 4")
        if self.stride < 0:
            raise ValueError("stride must be >= 0")
        if self.min_activation < 0:
            raise ValueError("min_activation must be >= 0")
        if self.max_latents_per_token is not None and self.max_latents_per_token < 1:
            raise ValueError("max_latents_per_token must be positive or None")


def position_limit(handle: HostModelHandle) -> int | None:
    """The longest sequence (special tokens included) the host model's position embeddings accept, or
    None when its config names no limit."""
    config = getattr(handle.model, "config", None)
    config = getattr(config, "text_config", None) or config
    for attribute in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            if getattr(config, "model_type", "") in _OFFSET_POSITION_MODELS:
                value -= int(getattr(config, "pad_token_id", 1) or 0) + 1
            return value
    return None


def window_length(handle: HostModelHandle, config: ExplainConfig) -> int:
    """Tokens per window, special tokens included: the configured length, capped by the tokenizer's
    model_max_length and by the model's position embeddings (whichever is smallest)."""
    limit = config.max_length
    declared = getattr(handle.tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < _UNBOUNDED:
        limit = min(limit, declared)
    positions = position_limit(handle)
    if positions is not None:
        limit = min(limit, positions)
    return limit


def window_starts(n_tokens: int, body: int, stride: int) -> list[int]:
    """First token of each window of `body` tokens over `n_tokens`, consecutive windows sharing `stride`
    tokens (clipped to half a window), the last window ending at the note's last token."""
    if n_tokens <= body:
        return [0]
    stride = min(stride, body // 2)
    step = body - stride
    starts = list(range(0, n_tokens - body, step))
    starts.append(n_tokens - body)  # the last window is full and ends at the note's end
    return starts


def most_central_window(position: int, starts: list[int], body: int, n_tokens: int, *, causal: bool) -> int:
    """The window in which the token at `position` has the most context: for an encoder the one where
    its distance to the nearer cut edge is largest (a window edge at the note's start or end cuts
    nothing), for a causal model the one with most tokens before it. Ties go to the earlier window."""
    best, best_score = 0, -1.0
    for window, start in enumerate(starts):
        end = min(start + body, n_tokens)
        if not start <= position < end:
            continue
        left = position - start if start > 0 else float("inf")
        right = end - 1 - position if end < n_tokens else float("inf")
        score = left if causal else min(left, right)
        if score > best_score:
            best, best_score = window, score
    return best


def _specials(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text ([CLS] … [SEP], <bos> …)."""
    probe = tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)
    ids, mask = list(probe["input_ids"]), list(probe["special_tokens_mask"])
    content = [i for i, special in enumerate(mask) if not special]
    if not content:
        return [], []
    return ids[: content[0]], ids[content[-1] + 1 :]


class ActiveLatent(NamedTuple):
    """One latent active on one token (a tuple: a 500-token note makes tens of thousands of them)."""

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
    """The note's tokens in order, and how it was cut: `n_windows` windows of at most `window_tokens`
    tokens of the note each (special tokens not counted), consecutive windows sharing `stride` tokens."""

    tokens: list[ExplainedToken]
    n_windows: int
    window_tokens: int = 0
    stride: int = 0

    def latent_maxima(self, hook_name: str) -> dict[int, float]:
        """Each latent's largest activation over the note at one hook."""
        best: dict[int, float] = {}
        for token in self.tokens:
            for latent in token.latents.get(hook_name, []):
                if latent.activation > best.get(latent.index, 0.0):
                    best[latent.index] = latent.activation
        return best


def _merge(first: list[ActiveLatent], second: list[ActiveLatent]) -> list[ActiveLatent]:
    """Two pieces of one character span (a byte-level tokenizer splits an emoji): each latent's larger
    activation, strongest first."""
    best: dict[int, float] = {}
    for latent in first + second:
        best[latent.index] = max(best.get(latent.index, 0.0), latent.activation)
    return [ActiveLatent(index=i, activation=v) for i, v in sorted(best.items(), key=lambda item: -item[1])]


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
    encode on raw activations, normalisation included). One forward pass over every window serves every
    hook and stops after the deepest one.

    A note longer than one window (the model's position limit, special tokens included) is cut into
    overlapping windows; each token's activations come from the window where it is most central
    (`most_central_window`), so a token near a cut still sees context on both sides."""
    if not encoders:
        raise ValueError("encoders is empty: name at least one hook point and its SAE")
    for name in encoders:
        parse_hook_name(name, n_layers=handle.n_layers)
    tokenizer = handle.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("explaining a note needs a fast tokenizer (character offsets)")
    if not text.strip():
        return NoteActivations(tokens=[], n_windows=0)
    device = torch.device(device)
    prefix, suffix = _specials(tokenizer)
    length = window_length(handle, config)
    body = length - len(prefix) - len(suffix)
    if body < 2:
        raise ValueError(f"a window of {length} tokens leaves no room for the note after the special tokens")
    # verbose=False: the whole note is longer than the model's window on purpose (windows come next)
    whole = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids, offsets = list(whole["input_ids"]), [tuple(span) for span in whole["offset_mapping"]]
    n_tokens = len(ids)
    if n_tokens == 0:
        return NoteActivations(tokens=[], n_windows=0, window_tokens=body)
    starts = window_starts(n_tokens, body, config.stride)
    stride = min(config.stride, body // 2) if len(starts) > 1 else 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = len(prefix) + min(body, n_tokens) + len(suffix)
    input_ids = torch.full((len(starts), width), pad, dtype=torch.long)
    attention = torch.zeros((len(starts), width), dtype=torch.long)
    for window, start in enumerate(starts):
        row = prefix + ids[start : start + body] + suffix
        input_ids[window, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[window, : len(row)] = 1
    encoding = {"input_ids": input_ids, "attention_mask": attention}
    if "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
        encoding["token_type_ids"] = torch.zeros_like(input_ids)
    causal = handle.kind == "causal"
    chosen = [most_central_window(p, starts, body, n_tokens, causal=causal) for p in range(n_tokens)]
    rows = torch.tensor(chosen, dtype=torch.long, device=device)
    cols = torch.tensor([len(prefix) + p - starts[w] for p, w in enumerate(chosen)], dtype=torch.long, device=device)
    hook_names = list(encoders)
    with capturing(handle.model, hook_names, stop_early=True) as captured:
        run_to_hooks(handle.model, model_inputs(encoding, device, causal=causal))
    per_hook: dict[str, tuple[list[list[int]], list[list[float]]]] = {}
    for name, encode in encoders.items():
        z = encode(captured[name][rows, cols].float()).float()  # [n_tokens, d_sae], the note's order
        mask = z > config.min_activation
        counts = mask.sum(dim=1)
        top = int(counts.max()) if counts.numel() else 0
        if config.max_latents_per_token is not None:
            top = min(top, config.max_latents_per_token)
        if top == 0:
            per_hook[name] = ([[] for _ in ids], [[] for _ in ids])
            continue
        values, indices = torch.where(mask, z, torch.zeros_like(z)).topk(top, dim=1)
        n_keep = counts.clamp(max=top).tolist()
        values, indices = values.cpu().tolist(), indices.cpu().tolist()
        per_hook[name] = (
            [row[:n] for row, n in zip(indices, n_keep, strict=True)],
            [row[:n] for row, n in zip(values, n_keep, strict=True)],
        )
    tokens: list[ExplainedToken] = []
    for position, (start, end) in enumerate(offsets):
        latents = {
            name: [
                ActiveLatent(index=i, activation=v)
                for i, v in zip(per_hook[name][0][position], per_hook[name][1][position], strict=True)
            ]
            for name in hook_names
        }
        if tokens and (tokens[-1].start, tokens[-1].end) == (start, end):  # pieces of one character span
            previous = tokens.pop()
            latents = {name: _merge(previous.latents[name], latents[name]) for name in hook_names}
        tokens.append(ExplainedToken(text=text[start:end], start=int(start), end=int(end), latents=latents))
    return NoteActivations(tokens=tokens, n_windows=len(starts), window_tokens=body, stride=stride)
