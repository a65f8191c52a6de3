"""BatchTopK SAE: the B*k largest activations of a batch, and a learnt global threshold for inference
(Bussmann, Leask and Nanda 2024, "BatchTopK sparse autoencoders")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from inference.engine.kernels import SparseCodes, batch_topk_codes, threshold_codes
from inference.engine.saes.base import is_number, require
from inference.engine.saes.topk import TopKConfig, TopKSAE


@dataclass(frozen=True, kw_only=True)
class BatchTopKConfig(TopKConfig):
    architecture: ClassVar[str] = "batchtopk"

    threshold_momentum: float = 0.99
    """The inference threshold is an exponential moving average, with this momentum, of the
    smallest activation each training batch kept."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            is_number(self.threshold_momentum) and 0 <= self.threshold_momentum < 1,
            f"threshold_momentum must be in [0, 1), got {self.threshold_momentum!r}",
        )


class BatchTopKSAE(TopKSAE):
    """Training keeps the B*k largest ReLU(pre) of the batch [B, d_sae] (the per-token count varies);
    inference keeps ReLU(pre) > threshold, token by token, so that it exports as a JumpReLU."""

    architecture = "batchtopk"
    config_class = BatchTopKConfig
    cfg: BatchTopKConfig

    def __init__(self, cfg: BatchTopKConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator=generator)
        # 0 means "not yet estimated": the first training batch sets it outright.
        self.register_buffer("threshold", torch.zeros(()))

    def select(self, pre: torch.Tensor) -> SparseCodes:
        return threshold_codes(pre, pre > self.threshold.clamp_min(0))

    def select_for_training(self, pre: torch.Tensor) -> SparseCodes:
        codes = batch_topk_codes(F.relu(pre), pre.shape[0] * self.cfg.k)
        self._update_threshold(codes.values)
        return codes

    @torch.no_grad()
    def _update_threshold(self, kept: torch.Tensor) -> None:
        # Without a host sync: a batch that kept nothing positive leaves the threshold alone.
        smallest = torch.where(kept > 0, kept, torch.inf).min().to(self.threshold.dtype)
        momentum = self.cfg.threshold_momentum
        averaged = torch.where(self.threshold > 0, momentum * self.threshold + (1 - momentum) * smallest, smallest)
        self.threshold.copy_(torch.where(torch.isfinite(smallest), averaged, self.threshold))
