"""Label-free drift audit: does an SAE see a new corpus the way it saw its reference corpus?

Four comparisons, each on statistics that one streaming pass per corpus accumulates:
1. Per-latent firing rate (share of tokens with z > 0): log2 ratio corpus/reference with a
   pseudocount, a two-sided two-proportion z-test per latent, and Benjamini–Hochberg control of the
   false discovery rate over the latents tested. A latent is flagged when the test rejects AND the
   rate changed by at least `min_abs_log2_ratio` (tokens of one snippet are not independent, so the
   z-test alone over-rejects on large corpora; the effect-size floor keeps flags meaningful).
2. The distribution of active-latent counts per token (L0): total-variation distance between the
   two histograms (always 0 for TopK, informative for ReLU and JumpReLU).
3. Reconstruction FVE on each corpus (FVE = 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖², x̄ each corpus's own
   mean): an SAE that reconstructs worse is seeing something it was not trained on.
4. An overall divergence: Jensen–Shannon divergence (bits, in [0, 1]) between the two corpora's
   firing distributions over latents (p_i = firings of latent i / all firings).
The corpus drifts when any of divergence, FVE drop, share of flagged latents or L0 distance reaches
its threshold (`DriftConfig`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from inference.engine.drift_config import DriftConfig
from inference.engine.metrics import ReconstructionAccumulator

Encode = Callable[[torch.Tensor], torch.Tensor]  # raw [n, d_in] -> z [n, d_sae]
Decode = Callable[[torch.Tensor], torch.Tensor]  # z [n, d_sae] -> raw x_hat [n, d_in]


@dataclass(frozen=True)
class CorpusStatistics:
    """What one pass over a corpus leaves: enough to compare it with any other."""

    n_tokens: int
    firing_counts: np.ndarray  # int64 [d_sae]: tokens on which each latent fired
    l0_histogram: np.ndarray  # int64 [d_sae + 1]: tokens with 0, 1, ... active latents
    fve: float
    mse: float

    @property
    def rates(self) -> np.ndarray:
        return self.firing_counts / max(self.n_tokens, 1)

    def to_dict(self) -> dict:
        return {
            "n_tokens": self.n_tokens,
            "firing_counts": self.firing_counts.tolist(),
            "l0_histogram": self.l0_histogram.tolist(),
            "fve": self.fve,
            "mse": self.mse,
        }

    @classmethod
    def from_dict(cls, data: dict) -> CorpusStatistics:
        return cls(
            n_tokens=int(data["n_tokens"]),
            firing_counts=np.asarray(data["firing_counts"], dtype=np.int64),
            l0_histogram=np.asarray(data["l0_histogram"], dtype=np.int64),
            fve=float(data["fve"]),
            mse=float(data["mse"]),
        )


@torch.inference_mode()
def corpus_statistics(
    *, batches: Iterable[torch.Tensor], encode: Encode, decode: Decode, device: torch.device | str = "cpu"
) -> CorpusStatistics:
    """Stream raw activation batches [n, d_in] through the SAE once."""
    device = torch.device(device)
    counts: torch.Tensor | None = None
    l0_hist: torch.Tensor | None = None
    reconstruction = ReconstructionAccumulator()
    n_tokens = 0
    for x in batches:
        x = torch.as_tensor(x).to(device).float()
        if x.shape[0] == 0:
            continue
        z = encode(x).float()
        active = z > 0
        if counts is None:
            counts = torch.zeros(z.shape[1], dtype=torch.int64, device=device)
            l0_hist = torch.zeros(z.shape[1] + 1, dtype=torch.int64, device=device)
        counts += active.sum(dim=0)
        l0_hist += torch.bincount(active.sum(dim=1), minlength=l0_hist.numel())
        reconstruction.update(x=x, x_hat=decode(z), z=z)
        n_tokens += x.shape[0]
    if counts is None or l0_hist is None:
        raise ValueError("the corpus gave no tokens")
    metrics = reconstruction.compute()
    return CorpusStatistics(
        n_tokens=n_tokens,
        firing_counts=counts.cpu().numpy(),
        l0_histogram=l0_hist.cpu().numpy(),
        fve=float(metrics.fve),
        mse=float(metrics.mse),
    )


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values) in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    n = p.size
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def two_proportion_p_values(count_a: np.ndarray, n_a: int, count_b: np.ndarray, n_b: int) -> np.ndarray:
    """Two-sided p-values of the pooled two-proportion z-test, element-wise."""
    count_a, count_b = np.asarray(count_a, dtype=np.float64), np.asarray(count_b, dtype=np.float64)
    pooled = (count_a + count_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (count_a / n_a - count_b / n_b) / se, 0.0)
    return np.array([math.erfc(abs(value) / math.sqrt(2)) for value in z])


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits of two non-negative vectors, each normalised to sum 1."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return math.nan
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / m[mask])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    size = max(a.size, b.size)
    a, b = np.pad(a, (0, size - a.size)), np.pad(b, (0, size - b.size))
    return 0.5 * float(np.abs(a / a.sum() - b / b.sum()).sum())


@dataclass(frozen=True)
class FlaggedLatent:
    index: int
    rate_reference: float
    rate_corpus: float
    log_ratio: float  # log2 of the (pseudocounted) rate ratio corpus / reference
    q_value: float


@dataclass(frozen=True)
class DriftReport:
    drift: bool
    reasons: list[str]  # which thresholds were reached
    fve_reference: float
    fve_corpus: float
    divergence: float  # Jensen–Shannon, bits
    l0_distance: float
    mean_l0_reference: float
    mean_l0_corpus: float
    n_tokens_reference: int
    n_tokens_corpus: int
    n_tested: int
    flagged: list[FlaggedLatent]  # strongest |log ratio| first
    rates_reference: list[float]  # every latent, for the rate-against-rate plot
    rates_corpus: list[float]
    config: dict[str, float]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["flagged"] = [asdict(flag) for flag in self.flagged]
        return data


def compare_corpora(
    *, reference: CorpusStatistics, corpus: CorpusStatistics, config: DriftConfig = DriftConfig()
) -> DriftReport:
    if reference.firing_counts.shape != corpus.firing_counts.shape:
        raise ValueError("the two corpora were encoded by SAEs of different widths")
    n_ref, n_new = reference.n_tokens, corpus.n_tokens
    c_ref, c_new = reference.firing_counts, corpus.firing_counts
    rate_ref, rate_new = reference.rates, corpus.rates
    log_ratio = np.log2((c_new + config.pseudocount) / (n_new + 2 * config.pseudocount)) - np.log2(
        (c_ref + config.pseudocount) / (n_ref + 2 * config.pseudocount)
    )
    tested = np.flatnonzero((rate_ref >= config.min_rate) | (rate_new >= config.min_rate))
    q = np.ones(c_ref.size)
    if tested.size:
        q[tested] = benjamini_hochberg(two_proportion_p_values(c_new[tested], n_new, c_ref[tested], n_ref))
    flagged_mask = np.zeros(c_ref.size, dtype=bool)
    flagged_mask[tested] = (q[tested] <= config.fdr) & (np.abs(log_ratio[tested]) >= config.min_abs_log2_ratio)
    flagged = [
        FlaggedLatent(
            index=int(i),
            rate_reference=float(rate_ref[i]),
            rate_corpus=float(rate_new[i]),
            log_ratio=float(log_ratio[i]),
            q_value=float(q[i]),
        )
        for i in sorted(np.flatnonzero(flagged_mask), key=lambda i: -abs(log_ratio[i]))
    ]
    divergence = jensen_shannon(c_ref, c_new)
    l0_distance = total_variation(reference.l0_histogram, corpus.l0_histogram)
    flagged_share = len(flagged) / tested.size if tested.size else 0.0
    checks = [
        ("divergence", divergence >= config.divergence_threshold),
        ("fve_drop", reference.fve - corpus.fve >= config.fve_drop_threshold),
        ("flagged_share", flagged_share >= config.flagged_share_threshold),
        ("l0_distance", l0_distance >= config.l0_distance_threshold),
    ]
    reasons = [name for name, reached in checks if reached]

    def mean_l0(histogram: np.ndarray) -> float:
        return float((np.arange(histogram.size) * histogram).sum() / max(histogram.sum(), 1))

    return DriftReport(
        drift=bool(reasons),
        reasons=reasons,
        fve_reference=reference.fve,
        fve_corpus=corpus.fve,
        divergence=divergence,
        l0_distance=l0_distance,
        mean_l0_reference=mean_l0(reference.l0_histogram),
        mean_l0_corpus=mean_l0(corpus.l0_histogram),
        n_tokens_reference=n_ref,
        n_tokens_corpus=n_new,
        n_tested=int(tested.size),
        flagged=flagged,
        rates_reference=rate_ref.tolist(),
        rates_corpus=rate_new.tolist(),
        config=config.to_dict(),
    )
