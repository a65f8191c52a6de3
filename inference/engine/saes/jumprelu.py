"""JumpReLU SAE with per-latent thresholds learnt through straight-through estimators and an L0 penalty
(Rajamanoharan et al. 2024, "Jumping ahead: improving reconstruction fidelity with JumpReLU sparse autoencoders")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

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
class JumpReLUConfig(SAEConfig):
    architecture: ClassVar[str] = "jumprelu"

    l0_coefficient: float = 1.0
    """lambda in ||x - x_hat||^2 + lambda * L0, L0 being the number of active latents per token."""
    bandwidth: float = 0.001
    """epsilon, the width of the rectangle kernel of the threshold's pseudo-derivative (the paper's 0.001)."""
    initial_threshold: float = 0.001
    """Every latent's threshold theta at initialisation (the paper's 0.001)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            is_number(self.l0_coefficient) and self.l0_coefficient >= 0,
            f"l0_coefficient must be a non-negative number, got {self.l0_coefficient!r}",
        )
        require(
            is_number(self.bandwidth) and 0 < self.bandwidth < math.inf,
            f"bandwidth must be a positive number, got {self.bandwidth!r}",
        )
        require(
            is_number(self.initial_threshold) and 0 < self.initial_threshold < math.inf,
            f"initial_threshold must be a positive number, got {self.initial_threshold!r}",
        )


def _rectangle(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """pre * H(pre - theta). d/dpre = H(pre - theta); d/dtheta = -(theta / eps) K((pre - theta) / eps)."""

    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = grad_out * (pre > theta).to(grad_out.dtype)
        pseudo = -(theta / eps) * _rectangle((at_least_float32(pre) - theta) / eps)
        grad_theta = (at_least_float32(grad_out) * pseudo).sum(dim=0)
        return grad_pre, grad_theta.to(theta.dtype), None


class _Step(torch.autograd.Function):
    """H(pre - theta). d/dpre = 0; d/dtheta = -(1 / eps) K((pre - theta) / eps)."""

    @staticmethod
    def forward(ctx, pre, theta, bandwidth):
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        kernel = _rectangle((at_least_float32(pre) - theta) / eps)
        grad_theta = (at_least_float32(grad_out) * -(1.0 / eps) * kernel).sum(dim=0)
        return None, grad_theta.to(theta.dtype), None


class JumpReLUSAE(SparseAutoencoder):
    """z = pre * H(pre - theta) with pre = (x - b_dec) W_enc + b_enc and theta [d_sae] > 0.

    Training learns log theta (so theta stays positive); `threshold` is the exported tensor,
    refreshed from it after every optimiser step, so that a loaded file reproduces it bit for bit.
    """

    architecture = "jumprelu"
    config_class = JumpReLUConfig
    cfg: JumpReLUConfig

    def __init__(self, cfg: JumpReLUConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg, generator=generator)
        self.log_threshold = nn.Parameter(torch.full((cfg.d_sae,), math.log(cfg.initial_threshold)))
        self.register_buffer("threshold", self.log_threshold.detach().exp())

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return pre * (pre > self.threshold).to(pre.dtype)

    def forward(
        self, x: torch.Tensor, *, dead_latents: torch.Tensor | None = None, sparsity_scale: float = 1.0
    ) -> ForwardOutput:
        with phase("encode"):
            pre = self.preactivations(x)
        if not self.training:
            z = self.activate(pre)
            x_hat = at_least_float32(self.decode(z))
            mse = squared_error(x_hat, x)
            l0 = (z > 0).sum(dim=1).to(x_hat.dtype).mean()
            return ForwardOutput(x_hat=x_hat, losses={"mse": mse, "l0": l0}, loss=mse, dense_z=z)
        with phase("select"):
            theta = self.log_threshold.exp()
            z = _JumpReLU.apply(pre, theta, self.cfg.bandwidth)
            l0 = at_least_float32(_Step.apply(pre, theta, self.cfg.bandwidth)).sum(dim=1).mean()
        with phase("decode"):
            x_hat = at_least_float32(self.decode(z))
            mse = squared_error(x_hat, x)
        loss = mse + sparsity_scale * self.cfg.l0_coefficient * l0
        return ForwardOutput(x_hat=x_hat, losses={"mse": mse, "l0": l0}, loss=loss, dense_z=z)

    @torch.no_grad()
    def after_step(self) -> None:
        super().after_step()
        self.threshold.copy_(self.log_threshold.exp())

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return {**super().export_tensors(), "threshold": self.threshold.detach().contiguous().clone()}

    @torch.no_grad()
    def import_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        super().import_tensors(tensors)
        self.threshold.copy_(tensors["threshold"])
        # A zero threshold (some published SAEs have them) has no logarithm; the tiny floor only
        # matters if training continues, inference reads `threshold` itself.
        self.log_threshold.copy_(tensors["threshold"].clamp_min(torch.finfo(torch.float32).tiny).log())
