"""Latent mining: per latent the top snippets, quantile-bin samples, negatives, a log-scale
histogram, density and max/mean activation, from one streaming pass over an activation store.

How it runs and what it holds in memory:
1. One pass over every token, whole snippets per batch of ~`batch_tokens` rows. Per batch the SAE
   encodes [n, d_sae] at once; running per-latent sums, counts and maxima, a fine fixed log-grid
   histogram (int32 [d_sae, 768]), the per-snippet maxima and a running top-K per latent are all
   updated with tensor ops (no Python loop over latents).
2. The per-snippet max matrix `snippet_max` [n_snippets, d_sae] (float32 by default: 4 bytes per
   cell, so 100k snippets × 16k latents = 6.4 GB; pass `snippet_max_path` to keep it as a `.npy`
   memory map on disk, or `snippet_max_dtype="float16"` to halve it) gives the quantile bins and
   the negatives after the pass, and is returned for monosemanticity.
3. Only the snippets chosen as examples are encoded again to read every token's activation of each
   latent; that second read touches at most the whole corpus and usually a small part of it.
SAE activations are taken as nonnegative (ReLU, TopK, JumpReLU): a latent is active where z > 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inference.engine.activations import ActivationStore, Progress

Encode = Callable[[torch.Tensor], torch.Tensor]

# Fine histogram grid: 64 bins per decade over [1e-6, 1e6); coarse per-latent bins are unions of
# fine bins, so their counts are exact for their edges. Values outside the grid clamp to its ends.
_LOG10_MIN, _LOG10_MAX, _BINS_PER_DECADE = -6, 6, 64
_FINE_BINS = (_LOG10_MAX - _LOG10_MIN) * _BINS_PER_DECADE
EXAMPLE_KINDS = ("top", "quantile", "negative")


@dataclass(frozen=True)
class MiningConfig:
    n_top: int = 20  # top snippets per latent, by max token activation
    n_quantile_bins: int = 10  # equal-count bins over the activating snippets' max activations
    n_per_quantile: int = 5  # samples per bin
    n_negative: int = 5  # snippets where the latent never fires (detection rounds)
    n_histogram_bins: int = 50  # at most; log-spaced over the latent's own range
    batch_tokens: int = 4096  # tokens encoded at once
    window: int | None = None  # keep this many tokens either side of the peak; None: whole snippet
    snippet_max_dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_top", "n_quantile_bins", "n_histogram_bins", "batch_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        for name in ("n_per_quantile", "n_negative"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.window is not None and self.window < 0:
            raise ValueError("window must be >= 0 or None")
        if self.snippet_max_dtype not in ("float16", "float32"):
            raise ValueError("snippet_max_dtype must be float16 or float32")


@dataclass(frozen=True)
class LatentExampleRecord:
    snippet_index: int
    kind: str  # 'top' | 'quantile' | 'negative'
    rank_or_bin: int  # rank among top examples (0 = highest), quantile bin (0 = lowest), or draw
    max_activation: float  # the snippet's max of this latent, as ranked and binned
    tokens: list[str]
    activations: list[float]  # one per token, aligned with `tokens`
    peak_index: int  # index into `tokens` of the highest activation
    token_offset: int = 0  # index of tokens[0] among the snippet's kept tokens (non-zero with a window)


@dataclass(frozen=True)
class LatentHistogram:
    counts: list[int]  # counts[i] tokens with edges[i] <= z < edges[i + 1]; sums to the active tokens
    edges: list[float]  # log-spaced, len(counts) + 1; both empty for a dead latent


@dataclass(frozen=True)
class LatentSummary:
    index: int
    density: float  # share of tokens with z > 0
    max_activation: float
    mean_activation: float  # mean over the tokens where the latent is active
    n_active_tokens: int
    n_active_snippets: int
    histogram: LatentHistogram
    quantile_edges: list[float]  # n_quantile_bins + 1 values; bin b holds max in [edges[b], edges[b+1]]
    examples: list[LatentExampleRecord]


@dataclass(frozen=True)
class MiningResult:
    latents: list[LatentSummary]
    snippet_max: np.ndarray  # [n_snippets, d_sae]: each latent's max activation per snippet (0 if none)
    n_tokens: int
    n_snippets: int


@dataclass
class _RunningStats:
    count: torch.Tensor  # int64 [d_sae]
    total: torch.Tensor  # float64 [d_sae]
    maximum: torch.Tensor  # float32 [d_sae]
    fine_histogram: torch.Tensor  # int32 [d_sae, _FINE_BINS]
    top_values: torch.Tensor  # float32 [d_sae, n_top]
    top_snippets: torch.Tensor  # int64 [d_sae, n_top]

    @classmethod
    def empty(cls, d_sae: int, n_top: int, device: torch.device) -> _RunningStats:
        return cls(
            count=torch.zeros(d_sae, dtype=torch.int64, device=device),
            total=torch.zeros(d_sae, dtype=torch.float64, device=device),
            maximum=torch.zeros(d_sae, dtype=torch.float32, device=device),
            fine_histogram=torch.zeros(d_sae, _FINE_BINS, dtype=torch.int32, device=device),
            top_values=torch.full((d_sae, n_top), -math.inf, dtype=torch.float32, device=device),
            top_snippets=torch.full((d_sae, n_top), -1, dtype=torch.int64, device=device),
        )

    def update(self, z: torch.Tensor, segment: torch.Tensor, first_snippet: int, n_segments: int) -> torch.Tensor:
        """z [n, d_sae]; segment [n] = snippet index − first_snippet. Returns the per-snippet max
        [n_segments, d_sae] (0 where the latent never fires)."""
        # per-latent sums run over the active entries only: column reductions of the dense
        # [n, d_sae] batch cost more than the encoder itself on CPU
        token, latent = (z > 0).nonzero(as_tuple=True)
        values = z[token, latent]
        self.count += torch.bincount(latent, minlength=self.count.numel())
        self.total.index_add_(0, latent, values.to(torch.float64))
        fine = ((torch.log10(values) - _LOG10_MIN) * _BINS_PER_DECADE).floor().clamp_(0, _FINE_BINS - 1).long()
        self.fine_histogram.view(-1).index_add_(0, latent * _FINE_BINS + fine, torch.ones_like(fine, dtype=torch.int32))

        snippet_max = z.new_zeros((n_segments, z.shape[1]))
        # an expanded index is a stride-0 view: no [n, d_sae] int64 tensor is materialised
        snippet_max.scatter_reduce_(0, segment[:, None].expand_as(z), z, "amax", include_self=True)
        self.maximum = torch.maximum(self.maximum, snippet_max.max(dim=0).values)

        # merge this batch's snippets into the running top-K of every latent at once
        d_sae, n_top = self.top_values.shape
        candidates = torch.cat([self.top_values, snippet_max.T], dim=1)
        candidate_snippets = torch.cat(
            [
                self.top_snippets,
                (torch.arange(n_segments, device=z.device) + first_snippet).expand(d_sae, n_segments),
            ],
            dim=1,
        )
        self.top_values, chosen = candidates.topk(n_top, dim=1)
        self.top_snippets = candidate_snippets.gather(1, chosen)
        return snippet_max


def _coarse_histogram(fine: np.ndarray, n_bins: int, maximum: float) -> LatentHistogram:
    occupied = np.flatnonzero(fine)
    if occupied.size == 0:
        return LatentHistogram(counts=[], edges=[])
    lo, hi = int(occupied[0]), int(occupied[-1]) + 1
    width = math.ceil((hi - lo) / n_bins)
    starts = np.arange(lo, hi, width)
    counts = np.add.reduceat(fine[lo:hi], starts - lo)
    fine_edges = np.append(starts, starts[-1] + width)
    edges = 10.0 ** (_LOG10_MIN + fine_edges / _BINS_PER_DECADE)
    edges[-1] = max(edges[-1], maximum)  # values above the grid were clamped into the last bin
    return LatentHistogram(counts=counts.astype(int).tolist(), edges=edges.tolist())


@dataclass(frozen=True)
class _Pick:
    latent: int
    kind: str
    rank_or_bin: int
    max_activation: float


def _quantile_picks(
    latent: int,
    ascending_values: np.ndarray,
    ascending_snippets: np.ndarray,
    config: MiningConfig,
    rng: np.random.Generator,
) -> tuple[list[float], list[tuple[int, _Pick]]]:
    """Equal-count bins over the activating snippets sorted by max; `n_per_quantile` random draws
    per bin, avoiding the top examples while the bin has enough other snippets."""
    n_active = ascending_values.size
    if n_active == 0:
        return [], []
    n_bins = config.n_quantile_bins
    bounds = [(b * n_active) // n_bins for b in range(n_bins + 1)]
    edges = [float(ascending_values[min(bound, n_active - 1)]) for bound in bounds[:-1]]
    edges.append(float(ascending_values[-1]))
    not_top = n_active - min(config.n_top, n_active)
    picks = []
    for b in range(n_bins):
        lo, hi = bounds[b], bounds[b + 1]
        if hi <= lo or config.n_per_quantile == 0:
            continue
        preferred_hi = min(hi, not_top)
        if preferred_hi - lo >= config.n_per_quantile:
            hi = preferred_hi
        chosen = lo + rng.choice(hi - lo, size=min(config.n_per_quantile, hi - lo), replace=False)
        for rank in np.sort(chosen)[::-1]:
            picks.append((int(ascending_snippets[rank]), _Pick(latent, "quantile", b, float(ascending_values[rank]))))
    return edges, picks


def _negative_picks(
    latent: int, column: np.ndarray, nonempty: np.ndarray, config: MiningConfig, rng: np.random.Generator
) -> list[tuple[int, _Pick]]:
    if config.n_negative == 0 or nonempty.size == 0:
        return []
    # rejection sampling keeps this O(n_negative) for the usual sparse latent
    chosen: list[int] = []
    for _ in range(4):
        draw = nonempty[rng.integers(0, nonempty.size, size=4 * config.n_negative + 8)]
        for snippet in draw[column[draw] <= 0].tolist():
            if snippet not in chosen:
                chosen.append(snippet)
        if len(chosen) >= config.n_negative:
            break
    else:
        silent = nonempty[column[nonempty] <= 0]
        chosen = rng.permutation(silent)[: config.n_negative].tolist() if silent.size else []
    return [(s, _Pick(latent, "negative", number, 0.0)) for number, s in enumerate(chosen[: config.n_negative])]


def mine_latents(
    *,
    store: ActivationStore,
    encode: Encode,
    config: MiningConfig = MiningConfig(),
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    snippet_max_path: str | Path | None = None,
) -> MiningResult:
    """Mine every latent of the SAE behind `encode` (float32 [n, d_in] on `device` -> [n, d_sae],
    applying the SAE's own input normalisation) over `store`."""
    device = torch.device(device)
    n_snippets, n_tokens = store.n_snippets, len(store)
    if n_tokens == 0:
        raise ValueError("the activation store holds no tokens")
    stats: _RunningStats | None = None
    snippet_max: np.ndarray | None = None

    with torch.inference_mode():
        for batch in store.iter_batches(batch_tokens=config.batch_tokens):
            z = encode(torch.from_numpy(batch.activations).to(device)).float()
            if stats is None:
                d_sae = z.shape[1]
                stats = _RunningStats.empty(d_sae, config.n_top, device)
                shape = (n_snippets, d_sae)
                if snippet_max_path is not None:
                    snippet_max = np.lib.format.open_memmap(
                        snippet_max_path, mode="w+", dtype=config.snippet_max_dtype, shape=shape
                    )
                else:
                    snippet_max = np.zeros(shape, dtype=config.snippet_max_dtype)
            first = int(batch.snippet_index[0])
            n_segments = int(batch.snippet_index[-1]) - first + 1
            segment = torch.from_numpy(batch.snippet_index.astype(np.int64) - first).to(device)
            batch_max = stats.update(z, segment, first, n_segments)
            snippet_max[first : first + n_segments] = batch_max.cpu().numpy()
            if progress is not None:
                progress(0.7 * batch.stop / n_tokens, f"encoded {batch.stop}/{n_tokens} tokens")

    assert stats is not None and snippet_max is not None
    d_sae = snippet_max.shape[1]
    count = stats.count.cpu().numpy()
    total = stats.total.cpu().numpy()
    maximum = stats.maximum.cpu().numpy()
    fine_histogram = stats.fine_histogram.cpu().numpy()
    top_values = stats.top_values.cpu().numpy()
    top_snippets = stats.top_snippets.cpu().numpy()
    offsets = store.snippet_offsets
    nonempty = np.flatnonzero(np.diff(offsets) > 0)

    picks_by_snippet: dict[int, list[_Pick]] = defaultdict(list)
    quantile_edges: list[list[float]] = [[] for _ in range(d_sae)]
    n_active_snippets = np.zeros(d_sae, dtype=np.int64)
    # sort snippet_max column blocks of ~32M cells: one block in RAM at a time
    chunk = max(1, min(d_sae, (1 << 25) // max(1, n_snippets)))
    for chunk_start in range(0, d_sae, chunk):
        block = torch.from_numpy(np.ascontiguousarray(snippet_max[:, chunk_start : chunk_start + chunk].T)).float()
        ascending_values, ascending_snippets = block.sort(dim=1)
        ascending_values, ascending_snippets = ascending_values.numpy(), ascending_snippets.numpy()
        n_active = (block > 0).sum(dim=1).numpy()
        block = block.numpy()
        for offset in range(block.shape[0]):
            latent = chunk_start + offset
            rng = np.random.default_rng([config.seed, latent])
            active = int(n_active[offset])
            n_active_snippets[latent] = active
            for rank in range(min(config.n_top, active)):
                picks_by_snippet[int(top_snippets[latent, rank])].append(
                    _Pick(latent, "top", rank, float(top_values[latent, rank]))
                )
            edges, picks = _quantile_picks(
                latent,
                ascending_values[offset, n_snippets - active :],
                ascending_snippets[offset, n_snippets - active :],
                config,
                rng,
            )
            quantile_edges[latent] = edges
            for snippet, pick in [*picks, *_negative_picks(latent, block[offset], nonempty, config, rng)]:
                picks_by_snippet[snippet].append(pick)
        if progress is not None:
            progress(0.7 + 0.1 * min(1.0, (chunk_start + chunk) / d_sae), "choosing examples")

    examples = _read_examples(store, encode, picks_by_snippet, config, device, progress)
    order = {kind: position for position, kind in enumerate(EXAMPLE_KINDS)}
    latents = []
    for latent in range(d_sae):
        records = sorted(examples.get(latent, []), key=lambda r: (order[r.kind], r.rank_or_bin, -r.max_activation))
        n = int(count[latent])
        latents.append(
            LatentSummary(
                index=latent,
                density=n / n_tokens,
                max_activation=float(maximum[latent]),
                mean_activation=float(total[latent] / n) if n else 0.0,
                n_active_tokens=n,
                n_active_snippets=int(n_active_snippets[latent]),
                histogram=_coarse_histogram(fine_histogram[latent], config.n_histogram_bins, float(maximum[latent])),
                quantile_edges=quantile_edges[latent],
                examples=records,
            )
        )
    if progress is not None:
        progress(1.0, "mined")
    if isinstance(snippet_max, np.memmap):
        snippet_max.flush()
    return MiningResult(latents=latents, snippet_max=snippet_max, n_tokens=n_tokens, n_snippets=n_snippets)


def _read_examples(
    store: ActivationStore,
    encode: Encode,
    picks_by_snippet: dict[int, list[_Pick]],
    config: MiningConfig,
    device: torch.device,
    progress: Progress | None,
) -> dict[int, list[LatentExampleRecord]]:
    """Encode the chosen snippets again, in groups of ~batch_tokens, and cut out each pick's column."""
    offsets = store.snippet_offsets
    snippets = sorted(picks_by_snippet)
    out: dict[int, list[LatentExampleRecord]] = defaultdict(list)
    group: list[int] = []
    group_tokens = 0

    def flush() -> None:
        ranges = [(int(offsets[s]), int(offsets[s + 1])) for s in group]
        x = np.concatenate([store.rows(lo, hi) for lo, hi in ranges])
        z = encode(torch.from_numpy(x).to(device)).float().cpu().numpy()
        row = 0
        for snippet, (lo, hi) in zip(group, ranges, strict=False):
            picks = picks_by_snippet[snippet]
            columns = z[row : row + hi - lo, [pick.latent for pick in picks]].T  # [n_picks, n_tok]
            row += hi - lo
            tokens = store.token_strings(store.token_ids[lo:hi])
            for pick, values in zip(picks, columns, strict=False):
                peak = int(values.argmax()) if values.size else 0
                start, stop = 0, values.size
                if config.window is not None:
                    start, stop = max(0, peak - config.window), min(values.size, peak + config.window + 1)
                out[pick.latent].append(
                    LatentExampleRecord(
                        snippet_index=snippet,
                        kind=pick.kind,
                        rank_or_bin=pick.rank_or_bin,
                        max_activation=pick.max_activation,
                        tokens=tokens[start:stop],
                        activations=values[start:stop].tolist(),
                        peak_index=peak - start,
                        token_offset=start,
                    )
                )

    with torch.inference_mode():
        for done, snippet in enumerate(snippets):
            length = int(offsets[snippet + 1] - offsets[snippet])
            if group and group_tokens + length > config.batch_tokens:
                flush()
                group, group_tokens = [], 0
                if progress is not None:
                    progress(0.8 + 0.2 * done / len(snippets), f"read {done}/{len(snippets)} example snippets")
            group.append(snippet)
            group_tokens += length
        if group:
            flush()
    return out


# -- logit effects (causal hosts) ---------------------------------------------------------------
@dataclass(frozen=True)
class LogitEffects:
    """Per latent, the output tokens its decoder direction raises and lowers most.

    raised_ids / lowered_ids int64 [d_sae, k] (token ids, strongest first); raised / lowered
    float32 [d_sae, k]: the logit change per unit of latent activation (lowered ones negative).
    """

    raised_ids: torch.Tensor
    raised: torch.Tensor
    lowered_ids: torch.Tensor
    lowered: torch.Tensor


@torch.no_grad()
def logit_effects(
    *, directions: torch.Tensor, unembedding: torch.Tensor, centre: bool = False, k: int = 10, chunk_latents: int = 64
) -> LogitEffects:
    """The direct effect of each latent on the next-token logits: its decoder direction through the
    unembedding, the largest and smallest k entries (the "logit lens" of a latent, as Neuronpedia
    and Anthropic's feature pages show it).

    directions [d_sae, d_in]: what one unit of each latent adds to the residual stream, in raw
    activation units (W_dec divided by the normalisation's scale). unembedding [vocab, d_in]: the
    output embedding with the final norm's elementwise gain folded in (see
    `host_models.unembedding_with_final_norm`). The final norm also divides by each token's RMS (a
    positive number per token, the same for every vocabulary entry), which changes magnitudes but
    not which tokens rank first, so it is left out: the values are per unit of normalised residual.
    centre subtracts each direction's mean first, as a LayerNorm (GPT-2) does to its input.
    Latents are done `chunk_latents` at a time, so memory is chunk_latents x vocab floats.
    """
    d_sae, d_in = directions.shape
    if unembedding.ndim != 2 or unembedding.shape[1] != d_in:
        raise ValueError(f"unembedding has shape {tuple(unembedding.shape)}, expected [vocab, d_in={d_in}]")
    k = min(k, unembedding.shape[0])
    outputs = {name: [] for name in ("raised_ids", "raised", "lowered_ids", "lowered")}
    W_U = unembedding.float()
    for start in range(0, d_sae, chunk_latents):
        chunk = directions[start : start + chunk_latents].float().to(W_U.device)
        if centre:
            chunk = chunk - chunk.mean(dim=1, keepdim=True)
        logits = chunk @ W_U.T  # [chunk, vocab]
        top = logits.topk(k, dim=1)
        bottom = logits.topk(k, dim=1, largest=False)
        outputs["raised_ids"].append(top.indices.cpu())
        outputs["raised"].append(top.values.cpu())
        outputs["lowered_ids"].append(bottom.indices.cpu())
        outputs["lowered"].append(bottom.values.cpu())
    return LogitEffects(**{name: torch.cat(parts) for name, parts in outputs.items()})
