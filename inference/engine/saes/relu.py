"""ReLU SAE with an L1 penalty weighted by decoder norms (SAELens "standard")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from inference.engine.devices import phase
from inference.engine.saes.base import (
    ForwardOutput,
    SAEConfig,
    SparseAutoencoder,
    at_least_float32,
    is_number,
    require,
    squared_error,
)


@dataclass(frozen=True, kw_only=True)
class ReLUConfig(SAEConfig):
    architecture: ClassVar[str] = "relu"

    l1_coefficient: float = 1.0
    """lambda in ||x - x_hat||^2 + lambda * sum_i z_i ||W_dec,i||; with normalised inputs (E||x|| =
    sqrt(d_in)) values around 1-5 give L0 in the tens."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            is_number(self.l1_coefficient) and self.l1_coefficient >= 0,
            f"l1_coefficient must be a non-negative number, got {self.l1_coefficient!r}",
        )


class ReLUSAE(SparseAutoencoder):
    """z = ReLU((x - b_dec) W_enc + b_enc); x_hat = z W_dec + b_dec."""

    architecture = "relu"
    config_class = ReLUConfig
    cfg: ReLUConfig

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return F.relu(pre)

    def forward(
        self, x: torch.Tensor, *, dead_latents: torch.Tensor | None = None, sparsity_scale: float = 1.0
    ) -> ForwardOutput:
        with phase("encode"):
            pre = self.preactivations(x)
        with phase("select"):
            z = self.activate(pre)
        with phase("decode"):
            x_hat = at_least_float32(self.decode(z))
            mse = squared_error(x_hat, x)
        # Weighting by ||W_dec,i|| keeps the penalty honest if a row's norm ever drifts from 1
        # (Anthropic's April 2024 update); with the unit-norm constraint it is the plain L1.
        l1 = (at_least_float32(z) * self.W_dec.norm(dim=1)).sum(dim=1).mean()
        loss = mse + sparsity_scale * self.cfg.l1_coefficient * l1
        return ForwardOutput(x_hat=x_hat, losses={"mse": mse, "l1": l1}, loss=loss, dense_z=z)
