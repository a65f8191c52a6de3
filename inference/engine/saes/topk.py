"""TopK SAE with the AuxK loss for dead latents (Gao et al. 2024, "Scaling and evaluating sparse autoencoders")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from inference.engine.devices import phase
from inference.engine.kernels import SparseCodes, dense_decode, gather_encode, sparse_decode, topk_codes
from inference.engine.saes.base import (
    ForwardOutput,
    SAEConfig,
    SparseAutoencoder,
    at_least_float32,
    is_int,
    is_number,
    require,
    squared_error,
)


@dataclass(frozen=True, kw_only=True)
class TopKConfig(SAEConfig):
    architecture: ClassVar[str] = "topk"

    k: int = 32
    """Active latents per token: the k largest pre-activations, ReLU after."""
    aux_k: int | None = None
    """Dead latents that reconstruct the residual in the AuxK loss; None means d_in // 2 (Gao et al. B.1)."""
    aux_coefficient: float = 1 / 32
    """Weight of the AuxK loss (Gao et al. use 1/32); 0 switches it off."""
    sparse_kernels: bool = True
    """Decode from (indices, values) with sparse gradients (`inference.engine.kernels`); False runs
    the dense reference (scatter into zeros, ordinary matmuls). Same numbers, different speed."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            is_int(self.k) and 0 < self.k <= self.d_sae,
            f"k must be an integer in [1, d_sae={self.d_sae}], got {self.k!r}",
        )
        require(
            self.aux_k is None or (is_int(self.aux_k) and self.aux_k > 0),
            f"aux_k must be None or a positive integer, got {self.aux_k!r}",
        )
        require(
            is_number(self.aux_coefficient) and self.aux_coefficient >= 0,
            f"aux_coefficient must be a non-negative number, got {self.aux_coefficient!r}",
        )
        require(isinstance(self.sparse_kernels, bool), f"sparse_kernels must be a bool, got {self.sparse_kernels!r}")

    @property
    def effective_aux_k(self) -> int:
        return min(self.aux_k if self.aux_k is not None else max(self.d_in // 2, 1), self.d_sae)


class TopKSAE(SparseAutoencoder):
    """z = ReLU(TopK_k((x - b_dec) W_enc + b_enc)); x_hat = z W_dec + b_dec."""

    architecture = "topk"
    config_class = TopKConfig
    cfg: TopKConfig

    def select(self, pre: torch.Tensor) -> SparseCodes:
        """Which latents are active: the pattern (values still raw pre-activations) for pre [n, d_sae]."""
        return topk_codes(pre, self.cfg.k)

    def select_for_training(self, pre: torch.Tensor) -> SparseCodes:
        """The pattern a training step uses; the same as `select` except for BatchTopK."""
        return self.select(pre)

    def encode_sparse(self, x: torch.Tensor) -> SparseCodes:
        """x [n, d_in] -> the inference codes in CSR form (what `encode` returns densified)."""
        codes = self.select(self.preactivations(x))
        return codes.with_values(F.relu(codes.values))

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        codes = self.select(pre)
        return codes.with_values(F.relu(codes.values)).to_dense()

    def _differentiable_codes(self, x: torch.Tensor) -> tuple[torch.Tensor, SparseCodes]:
        """(pre [n, d_sae], codes with values that carry gradient to the encoder)."""
        # The sparse path computes pre without a graph: its backward goes through gather_encode.
        dense_graph = not self.cfg.sparse_kernels and torch.is_grad_enabled()
        with phase("encode"), torch.set_grad_enabled(dense_graph):
            pre = self.preactivations(x)
        with phase("select"):
            codes = self._select_for_mode(pre.detach())
        with phase("decode"):
            if self.cfg.sparse_kernels:
                values = gather_encode(x, self.b_dec, self.W_enc, self.b_enc, pre, codes)
            else:
                values = codes.gather(pre)
        return pre, codes.with_values(values)

    def _select_for_mode(self, pre: torch.Tensor) -> SparseCodes:
        return self.select_for_training(pre) if self.training else self.select(pre)

    def decode_codes(self, codes: SparseCodes) -> torch.Tensor:
        """codes @ W_dec [n, d_in], without b_dec; sparse kernels or the dense reference per config."""
        if self.cfg.sparse_kernels:
            return sparse_decode(codes, self.W_dec)
        return dense_decode(codes, self.W_dec)

    def reconstruction_losses(
        self, x: torch.Tensor, codes: SparseCodes
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """(x_hat, loss components, their weighted sum) for the active codes."""
        x_hat = self.decode_codes(codes) + self.b_dec
        mse = squared_error(x_hat, x)
        return x_hat, {"mse": mse}, mse

    def forward(
        self, x: torch.Tensor, *, dead_latents: torch.Tensor | None = None, sparsity_scale: float = 1.0
    ) -> ForwardOutput:
        pre, codes = self._differentiable_codes(x)
        with phase("decode"):
            codes = codes.with_values(F.relu(codes.values))
            x_hat, losses, loss = self.reconstruction_losses(x, codes)
        with phase("auxk"):
            auxk = self.auxk_loss(x, x_hat, pre, dead_latents)
        if auxk is not None:
            losses["auxk"] = auxk
            loss = loss + self.cfg.aux_coefficient * auxk
        return ForwardOutput(x_hat=x_hat, losses=losses, loss=loss, codes=codes)

    def auxk_loss(
        self, x: torch.Tensor, x_hat: torch.Tensor, pre: torch.Tensor, dead_latents: torch.Tensor | None
    ) -> torch.Tensor | None:
        """Gao et al.'s AuxK: the top aux_k dead latents reconstruct the main residual.

        Normalised by the residual's variance so that aux_coefficient means the same at any scale,
        and scaled down when fewer than aux_k latents are dead. The dead latents' values skip the
        ReLU: a latent is dead because its pre-activations are negative, and only the raw values
        still carry a gradient that can bring it back.
        """
        if dead_latents is None or self.cfg.aux_coefficient == 0:
            return None
        n_dead = int(dead_latents.sum())  # one host sync; the loss is skipped when nothing is dead
        if n_dead == 0:
            return None
        k_aux = min(self.cfg.effective_aux_k, n_dead)
        with torch.no_grad():
            pattern = topk_codes(pre.detach().masked_fill(~dead_latents, float("-inf")), k_aux)
        if self.cfg.sparse_kernels:
            values = gather_encode(x, self.b_dec, self.W_enc, self.b_enc, pre, pattern)
        else:
            values = pattern.gather(pre)
        residual = (at_least_float32(x) - x_hat).detach()
        reconstruction = self.decode_codes(pattern.with_values(values))
        variance = (residual - residual.mean(dim=0)).pow(2).sum(dim=1).mean().clamp_min(1e-12)
        scale = min(n_dead / self.cfg.effective_aux_k, 1.0)
        return scale * squared_error(reconstruction, residual) / variance
