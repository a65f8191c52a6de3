"""Matryoshka SAE: nested prefixes of the dictionary each reconstruct x, their losses summed
(Bussmann et al. 2025, "Learning multi-level features with Matryoshka sparse autoencoders";
Nabeshima 2024). Top-k activation per token, so it exports to SAELens as a plain `topk` SAE."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F

from inference.engine.kernels import SparseCodes
from inference.engine.saes.base import is_int, require, squared_error
from inference.engine.saes.topk import TopKConfig, TopKSAE


@dataclass(frozen=True, kw_only=True)
class MatryoshkaConfig(TopKConfig):
    architecture: ClassVar[str] = "matryoshka"

    widths: tuple[int, ...] = field(default=())
    """Strictly increasing prefix sizes, the last equal to d_sae; latents [0, widths[i]) form
    prefix i. Empty means (d_sae/16, d_sae/4, d_sae), rounded down and de-duplicated."""

    def __post_init__(self) -> None:
        super().__post_init__()
        widths = tuple(self.widths) if isinstance(self.widths, (list, tuple)) else self.widths
        if widths == ():
            widths = tuple(sorted({w for w in (self.d_sae // 16, self.d_sae // 4, self.d_sae) if w > 0}))
        require(
            isinstance(widths, tuple) and all(is_int(w) for w in widths),
            f"widths must be a sequence of integers, got {self.widths!r}",
        )
        require(
            all(a < b for a, b in zip(widths, widths[1:], strict=False)) and widths[0] > 0,
            f"widths must be positive and strictly increasing, got {widths!r}",
        )
        require(widths[-1] == self.d_sae, f"the last width must equal d_sae={self.d_sae}, got {widths!r}")
        object.__setattr__(self, "widths", widths)


class MatryoshkaSAE(TopKSAE):
    """A TopK SAE whose loss is sum_m ||x - (z[:, :w_m] W_dec[:w_m] + b_dec)||^2 over the prefixes."""

    architecture = "matryoshka"
    config_class = MatryoshkaConfig
    cfg: MatryoshkaConfig

    def reconstruction_losses(
        self, x: torch.Tensor, codes: SparseCodes
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        losses: dict[str, torch.Tensor] = {}
        total = 0.0
        for width, x_hat in zip(self.cfg.widths, self._prefix_reconstructions(codes), strict=False):
            mse = squared_error(x_hat, x)
            losses[f"mse_prefix_{width}"] = mse
            total = total + mse
        losses["mse"] = losses[f"mse_prefix_{self.cfg.widths[-1]}"]
        return x_hat, losses, total

    def _prefix_reconstructions(self, codes: SparseCodes) -> list[torch.Tensor]:
        # Each prefix decodes only its own entries: m sparse decodes of <= k rows per token cost far
        # less than the one dense encoder matmul, so there is no need for cumulative tricks.
        return [
            self.decode_codes(codes.with_values(codes.values * (codes.col < width))) + self.b_dec
            for width in self.cfg.widths
        ]

    @torch.no_grad()
    def prefix_reconstructions(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """{width: x_hat [n, d_in]} reconstructing x (normalised) from each prefix's latents alone."""
        codes = self.encode_sparse(x)
        return dict(
            zip(self.cfg.widths, self._prefix_reconstructions(codes.with_values(F.relu(codes.values))), strict=False)
        )
