"""What every SAE architecture shares: the config base, the four tensors, encode/decode, the decoder constraint."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from inference.engine.kernels import SparseCodes, preactivations


def require(condition: bool, message: str) -> None:
    """Raise the ValueError that a config's `__post_init__` reports for a bad field."""
    if not condition:
        raise ValueError(message)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


@dataclass(frozen=True, kw_only=True)
class SAEConfig:
    """Fields common to every architecture; each architecture's config adds its own."""

    architecture: ClassVar[str] = ""

    d_in: int
    """Width of the activations the SAE reads: the host model's d_model at the hook point."""
    d_sae: int
    """Number of latents (rows of W_dec)."""

    def __post_init__(self) -> None:
        require(is_int(self.d_in) and self.d_in > 0, f"d_in must be a positive integer, got {self.d_in!r}")
        require(is_int(self.d_sae) and self.d_sae > 0, f"d_sae must be a positive integer, got {self.d_sae!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus `architecture`; `config_from_dict` reverses it."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {
            "architecture": self.architecture,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()},
        }


@dataclass(eq=False)
class ForwardOutput:
    """One training forward pass.

    x_hat [n, d_in] (float32 or wider): the reconstruction. losses: unweighted components ("mse" is always
    there: sum over d_in of the squared error, mean over tokens). loss: the weighted total that
    `backward()` runs on. Codes come either sparse (`codes`) or dense (`dense_z`); `z` densifies.
    """

    x_hat: torch.Tensor
    losses: dict[str, torch.Tensor]
    loss: torch.Tensor
    codes: SparseCodes | None = None
    dense_z: torch.Tensor | None = None

    @property
    def z(self) -> torch.Tensor:
        """[n, d_sae] latent activations."""
        if self.dense_z is None:
            assert self.codes is not None
            self.dense_z = self.codes.to_dense()
        return self.dense_z

    def active_latents(self) -> torch.Tensor:
        """[d_sae] bool: latents that fired (> 0) on at least one token of the batch."""
        if self.codes is not None:
            return self.codes.active_latents()
        return (self.dense_z > 0).any(dim=0)

    def l0(self) -> torch.Tensor:
        """Mean number of active latents per token, as a 0-d tensor (no host sync)."""
        if self.codes is not None:
            return self.codes.l0()
        return (self.dense_z > 0).sum(dim=1).float().mean()


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """Losses are summed in float32 even when autocast computed t in bf16 (float64 stays float64)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """||x - x_hat||^2 per token, averaged over tokens."""
    return (at_least_float32(x_hat) - at_least_float32(x)).pow(2).sum(dim=-1).mean()


class SparseAutoencoder(nn.Module, ABC):
    """Common interface: `encode(x [n, d_in]) -> z [n, d_sae]`, `decode(z) -> x_hat`, `forward(x) -> ForwardOutput`.

    Parameters: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in] with unit-norm rows, b_dec
    [d_in]. Inputs are expected already normalised (see `Normalisation`); the encoder subtracts
    b_dec first, as SAELens's `apply_b_dec_to_input=True`.
    """

    architecture: ClassVar[str]
    config_class: ClassVar[type[SAEConfig]]

    def __init__(self, cfg: SAEConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if type(cfg) is not self.config_class:
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(cfg).__name__}")
        self.cfg = cfg
        # Random unit decoder rows and the tied encoder W_enc = W_dec^T (Gao et al. 2024, sec. 2.2):
        # every latent starts as a matched filter for its own direction, which keeps few latents dead.
        W_dec = torch.randn(cfg.d_sae, cfg.d_in, generator=generator, dtype=torch.float32)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_enc = nn.Parameter(W_dec.t().contiguous())
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.W_dec = nn.Parameter(W_dec)
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))

    @property
    def d_in(self) -> int:
        return self.cfg.d_in

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    def preactivations(self, x: torch.Tensor) -> torch.Tensor:
        """[n, d_sae] = (x - b_dec) @ W_enc + b_enc."""
        return preactivations(x, self.b_dec, self.W_enc, self.b_enc)

    @abstractmethod
    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        """Inference activation: pre [n, d_sae] -> z [n, d_sae]."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, d_in] (normalised) -> z [n, d_sae], the inference encoding."""
        return self.activate(self.preactivations(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, d_sae] -> x_hat [n, d_in]."""
        return z @ self.W_dec + self.b_dec

    @abstractmethod
    def forward(
        self, x: torch.Tensor, *, dead_latents: torch.Tensor | None = None, sparsity_scale: float = 1.0
    ) -> ForwardOutput:
        """Training pass on x [n, d_in]. dead_latents [d_sae] bool feeds AuxK where there is one;
        sparsity_scale in [0, 1] multiplies the sparsity penalty (its warm-up)."""

    @torch.no_grad()
    def constrain_decoder_gradient(self) -> None:
        """Remove from each W_dec row's gradient its component along the row, before the optimiser step.

        With unit-norm rows that component would only change the norm, which `after_step` undoes;
        left in, it would leak into Adam's moment estimates (Bricken et al. 2023).
        """
        grad = self.W_dec.grad
        if grad is not None:
            grad -= (grad * self.W_dec).sum(dim=1, keepdim=True) * self.W_dec

    @torch.no_grad()
    def after_step(self) -> None:
        """Restore the constraints after an optimiser step: unit-norm decoder rows."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(torch.finfo(self.W_dec.dtype).tiny)

    def export_tensors(self) -> dict[str, torch.Tensor]:
        """The tensors SAELens stores, under its names and shapes (contiguous copies)."""
        return {
            name: getattr(self, name).detach().contiguous().clone() for name in ("W_enc", "b_enc", "W_dec", "b_dec")
        }

    @torch.no_grad()
    def import_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of `export_tensors`; shapes must already be checked."""
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            getattr(self, name).copy_(tensors[name])

    def extra_repr(self) -> str:
        return f"architecture={self.architecture}, d_in={self.d_in}, d_sae={self.d_sae}"
