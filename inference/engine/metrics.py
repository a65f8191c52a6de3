"""SAE quality metrics: reconstruction (MSE, FVU, FVE, L0), dead latents, CE-loss recovered with
the SAE spliced into a causal host model, and MedSAE monosemanticity against concept tags."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from inference.engine.hooks import (
    forward_hooks,
    kept_token_mask,
    model_inputs,
    output_tensor,
    replace_output,
    resolve_hook_module,
    tokenize,
)
from inference.engine.host_models import HostModelHandle

Reconstruct = Callable[[torch.Tensor], torch.Tensor]


# -- reconstruction ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReconstructionMetrics:
    mse: float  # mean squared error per element: Σ‖x − x̂‖² / (n·d_in)
    fvu: float  # Σ‖x − x̂‖² / Σ‖x − x̄‖², x̄ the mean over the tokens seen
    fve: float  # 1 − fvu
    l0: float  # mean number of non-zero latents per token
    n_tokens: int


class ReconstructionAccumulator:
    """Running float64 sums so the metrics over many batches equal the metrics over their union."""

    def __init__(self) -> None:
        self.n = 0
        self.d_in = 0
        self.squared_error = 0.0
        self.active = 0.0
        # sums of x − shift, shift = the first batch's mean: Σ‖x − x̄‖² = Σ‖x‖² − n‖x̄‖² loses
        # precision when the mean dwarfs the spread (the residual stream's large constant dims)
        self.shift: torch.Tensor | None = None
        self.sum_x: torch.Tensor | None = None
        self.sum_squared_x = 0.0

    def update(self, *, x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor) -> None:
        """x, x_hat [n, d_in]; z [n, d_sae]."""
        x, x_hat, z = (torch.as_tensor(t).detach().to(torch.float64) for t in (x, x_hat, z))
        if x.shape != x_hat.shape or x.ndim != 2 or z.ndim != 2 or z.shape[0] != x.shape[0]:
            raise ValueError(
                f"shapes must be x, x_hat [n, d_in] and z [n, d_sae]; got {x.shape}, {x_hat.shape}, {z.shape}"
            )
        self.n += x.shape[0]
        self.d_in = x.shape[1]
        self.squared_error += float((x - x_hat).pow(2).sum())
        self.active += float((z != 0).sum())
        if self.shift is None:
            self.shift = x.mean(dim=0)
        shifted = x - self.shift
        batch_sum = shifted.sum(dim=0).cpu()
        self.sum_x = batch_sum if self.sum_x is None else self.sum_x + batch_sum
        self.sum_squared_x += float(shifted.pow(2).sum())

    def compute(self) -> ReconstructionMetrics:
        if self.n == 0 or self.sum_x is None:
            raise ValueError("no tokens were accumulated")
        # Σ‖x − x̄‖² = Σ‖x‖² − n‖x̄‖², in float64
        total_variance = self.sum_squared_x - float(self.sum_x.pow(2).sum()) / self.n
        fvu = self.squared_error / total_variance if total_variance > 0 else math.nan
        return ReconstructionMetrics(
            mse=self.squared_error / (self.n * self.d_in),
            fvu=fvu,
            fve=1.0 - fvu,
            l0=self.active / self.n,
            n_tokens=self.n,
        )


def reconstruction_metrics(*, x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor) -> ReconstructionMetrics:
    accumulator = ReconstructionAccumulator()
    accumulator.update(x=x, x_hat=x_hat, z=z)
    return accumulator.compute()


def fired_latents(z_stream: Iterable[torch.Tensor]) -> torch.Tensor:
    """bool [d_sae]: latents non-zero on at least one token of the stream of [n, d_sae] batches."""
    fired: torch.Tensor | None = None
    for z in z_stream:
        batch = (torch.as_tensor(z) != 0).any(dim=0)
        fired = batch if fired is None else fired | batch
    if fired is None:
        raise ValueError("the stream of latent activations is empty")
    return fired


def dead_fraction(z_stream: Iterable[torch.Tensor]) -> float:
    """Share of latents that never fire over the stream (pass the last N tokens' activations)."""
    fired = fired_latents(z_stream)
    return 1.0 - float(fired.float().mean())


# -- CE loss recovered ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CELossResult:
    clean: float  # mean next-token cross-entropy (nats) of the unmodified model
    with_sae: float  # ... with the hook's output replaced by reconstruct(output)
    zero_ablated: float  # ... with the hook's output replaced by zeros
    recovered: float  # (zero_ablated − with_sae) / (zero_ablated − clean); 1 = perfect splice
    n_tokens: int  # predicted tokens scored


def _next_token_loss_sum(
    logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[float, int]:
    """Summed cross-entropy of predicting token t+1 at t, where both are real tokens."""
    valid = (attention_mask[:, 1:] & attention_mask[:, :-1]).bool()
    predictions = logits[:, :-1][valid].float()
    targets = input_ids[:, 1:][valid]
    loss = torch.nn.functional.cross_entropy(predictions, targets, reduction="sum")
    return float(loss), int(valid.sum())


def ce_loss_recovered(
    *,
    handle: HostModelHandle,
    texts: Sequence[str],
    hook_name: str,
    reconstruct: Reconstruct,
    batch_size: int,
    max_length: int,
    device: torch.device | str,
    splice_special_tokens: bool = False,
) -> CELossResult:
    """Next-token CE loss clean, with `reconstruct` spliced in at `hook_name`, and zero-ablated there.

    `reconstruct` maps float32 [n, d_in] raw activations to their reconstruction (normalisation
    included), exactly as the SAE saw tokens at capture time: only real tokens are replaced, and
    special tokens (BOS) keep their activation unless `splice_special_tokens` — capture never
    showed them to the SAE.
    """
    if handle.kind != "causal":
        raise ValueError(
            f"CE-loss recovered needs a causal language model; {handle.source or 'this model'} is an "
            f"{handle.kind} model with no next-token head"
        )
    if batch_size < 1 or max_length < 2:
        raise ValueError("batch_size must be >= 1 and max_length >= 2")
    device = torch.device(device)
    module = resolve_hook_module(handle.model, hook_name)
    mode: dict[str, object] = {"replace": None, "keep": None}

    def splice(_module: torch.nn.Module, _inputs: object, output: object) -> object:
        replacement = mode["replace"]
        if replacement is None:
            return None  # clean pass: leave the output alone
        original = output_tensor(output)
        keep = mode["keep"]
        spliced = original.clone()
        if replacement == "zero":
            spliced[keep] = 0
        else:
            x_hat = reconstruct(original[keep].float())
            if x_hat.shape != original[keep].shape:
                raise ValueError(
                    f"reconstruct returned shape {tuple(x_hat.shape)}, expected {tuple(original[keep].shape)}"
                )
            spliced[keep] = x_hat.to(original.dtype)
        return replace_output(output, spliced)

    sums = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    n_tokens = 0
    model = handle.model
    with torch.inference_mode(), forward_hooks([(module, splice)]):
        for start in range(0, len(texts), batch_size):
            encoding = tokenize(
                handle.tokenizer, texts[start : start + batch_size], max_length=max_length, offsets=False
            )
            inputs = model_inputs(encoding, device, causal=True)
            keep = encoding["attention_mask"].bool() if splice_special_tokens else kept_token_mask(encoding)
            mode["keep"] = keep.to(device)
            for key, replacement in (("clean", None), ("sae", "reconstruct"), ("zero", "zero")):
                mode["replace"] = replacement
                logits = model(**inputs).logits
                loss, count = _next_token_loss_sum(logits, inputs["input_ids"], inputs["attention_mask"])
                sums[key] += loss
            n_tokens += count
    if n_tokens == 0:
        raise ValueError("no text has two or more tokens to score")
    clean, with_sae, zero = (sums[key] / n_tokens for key in ("clean", "sae", "zero"))
    gap = zero - clean
    recovered = (zero - with_sae) / gap if gap != 0 else math.nan
    return CELossResult(clean=clean, with_sae=with_sae, zero_ablated=zero, recovered=recovered, n_tokens=n_tokens)


# -- monosemanticity -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MonosemanticityResult:
    concept_names: list[str]
    best_concept: list[str | None]  # per latent: the concept with the highest Pearson r; None if skipped
    best_r: np.ndarray  # float64 [n_latents]; NaN where skipped
    entropy: np.ndarray  # float64 [n_latents], bits; NaN where skipped
    mean_entropy: float  # over scored latents; NaN if none
    max_entropy: float  # log2(n_concepts): the entropy of a latent correlated equally with all
    n_scored: int
    n_skipped: int  # latents with constant per-snippet max (never fire) or no correlation at all
    constant_concepts: list[str]  # tags present in all or no snippets: r = 0 with every latent


def pearson_blocks(
    *, snippet_max: np.ndarray, tags: np.ndarray, chunk_latents: int = 1024
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Pearson r of every latent column of snippet_max [n_snippets, n_latents] with every 0/1 tag column
    of tags [n_snippets, n_tags], in latent chunks: yields (first latent, r [chunk, n_tags], the
    columns' centred norms [chunk]); r is 0 where a column or a tag is constant."""
    tags = np.asarray(tags, dtype=np.float64)
    tag_centred = tags - tags.mean(axis=0)
    tag_norm = np.sqrt((tag_centred**2).sum(axis=0))
    tag_standard = np.divide(tag_centred, tag_norm, out=np.zeros_like(tag_centred), where=tag_norm != 0)
    for start in range(0, snippet_max.shape[1], chunk_latents):
        block = np.asarray(snippet_max[:, start : start + chunk_latents], dtype=np.float64)
        centred = block - block.mean(axis=0)
        norm = np.sqrt((centred**2).sum(axis=0))
        yield start, (centred.T @ tag_standard) / np.where(norm > 0, norm, 1.0)[:, None], norm


def monosemanticity(
    *,
    snippet_max: np.ndarray,
    tags: np.ndarray,
    concept_names: Sequence[str],
    chunk_latents: int = 1024,
) -> MonosemanticityResult:
    """MedSAE monosemanticity. snippet_max [n_snippets, n_latents] (a latent's or a raw neuron's
    max per snippet); tags [n_snippets, n_concepts] 0/1.

    r_ij = Pearson(snippet_max[:, i], tags[:, j]); p_ij = |r_ij| / Σ_k |r_ik|;
    H_i = −Σ_j p_ij log₂ p_ij. Latents are processed in column chunks, so `snippet_max` may be a
    memory map larger than RAM.
    """
    tags = np.asarray(tags, dtype=np.float64)
    n_snippets, n_latents = snippet_max.shape
    if tags.ndim != 2 or tags.shape[0] != n_snippets:
        raise ValueError(f"tags must be [n_snippets={n_snippets}, n_concepts]; got {tags.shape}")
    if tags.shape[1] != len(concept_names):
        raise ValueError(f"{tags.shape[1]} tag columns but {len(concept_names)} concept names")
    if tags.shape[1] < 2:
        raise ValueError("monosemanticity needs at least two concepts")
    if n_snippets < 2:
        raise ValueError("monosemanticity needs at least two snippets")

    constant_tag = tags.std(axis=0) == 0
    best_r = np.full(n_latents, np.nan)
    entropy = np.full(n_latents, np.nan)
    best_index = np.full(n_latents, -1)
    for start, r, norm in pearson_blocks(snippet_max=snippet_max, tags=tags, chunk_latents=chunk_latents):
        absolute = np.abs(r)
        total = absolute.sum(axis=1)
        scored = (norm > 0) & (total > 0)
        p = absolute[scored] / total[scored, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
        positions = np.arange(start, start + r.shape[0])[scored]
        entropy[positions] = h
        best = r[scored].argmax(axis=1)
        best_index[positions] = best
        best_r[positions] = r[scored][np.arange(best.size), best]

    names = list(concept_names)
    n_scored = int(np.isfinite(entropy).sum())
    return MonosemanticityResult(
        concept_names=names,
        best_concept=[names[i] if i >= 0 else None for i in best_index],
        best_r=best_r,
        entropy=entropy,
        mean_entropy=float(np.nanmean(entropy)) if n_scored else math.nan,
        max_entropy=math.log2(len(names)),
        n_scored=n_scored,
        n_skipped=n_latents - n_scored,
        constant_concepts=[name for name, constant in zip(names, constant_tag, strict=False) if constant],
    )
