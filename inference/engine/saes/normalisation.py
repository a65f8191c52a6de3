"""MedSAE input normalisation x' = (x - mu) * s with E||x'|| = sqrt(d_in), and an SAE that applies it."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from inference.engine.saes.base import SparseAutoencoder


@dataclass(frozen=True, eq=False)
class Normalisation:
    """x' = (x - mean) * scale. mean [d_in] float32; scale a positive float."""

    mean: torch.Tensor
    scale: float

    def __post_init__(self) -> None:
        if not isinstance(self.mean, torch.Tensor) or self.mean.ndim != 1 or self.mean.numel() == 0:
            raise ValueError("Normalisation.mean must be a non-empty 1-d tensor [d_in]")
        if not bool(torch.isfinite(self.mean).all()):
            raise ValueError("Normalisation.mean must be finite")
        if not isinstance(self.scale, (int, float)) or not (0 < self.scale < math.inf):
            raise ValueError(f"Normalisation.scale must be a positive finite number, got {self.scale!r}")
        object.__setattr__(self, "mean", self.mean.detach().to("cpu", torch.float32))
        object.__setattr__(self, "scale", float(self.scale))

    @property
    def d_in(self) -> int:
        return self.mean.shape[0]

    @classmethod
    def identity(cls, d_in: int) -> Normalisation:
        return cls(mean=torch.zeros(d_in), scale=1.0)

    @classmethod
    def fit(cls, x_sample: torch.Tensor | np.ndarray, *, chunk_rows: int = 8192) -> Normalisation:
        """mu = the sample mean; s = sqrt(d_in) / mean ||x - mu||; accumulated in float64, by chunks."""
        if x_sample.ndim != 2 or x_sample.shape[0] < 2:
            raise ValueError(f"Normalisation.fit needs a [n >= 2, d_in] sample, got shape {tuple(x_sample.shape)}")
        n, d_in = x_sample.shape
        chunks = [slice(start, min(start + chunk_rows, n)) for start in range(0, n, chunk_rows)]
        total = torch.zeros(d_in, dtype=torch.float64)
        for rows in chunks:
            total += _float64(x_sample[rows]).sum(dim=0)
        mean = total / n
        norm_sum = sum((_float64(x_sample[rows]) - mean).norm(dim=1).sum().item() for rows in chunks)
        norm = norm_sum / n
        if not (0 < norm < math.inf):
            raise ValueError("Normalisation.fit: the sample has no spread (or is not finite)")
        return cls(mean=mean.float(), scale=math.sqrt(d_in) / norm)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, d_in] raw -> normalised, on x's device and dtype."""
        return (x - self.mean.to(x.device, x.dtype)) * self.scale

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """x [n, d_in] normalised -> raw."""
        return x / self.scale + self.mean.to(x.device, x.dtype)

    def is_identity(self) -> bool:
        return self.scale == 1.0 and not bool(self.mean.any())

    def to_dict(self) -> dict[str, Any]:
        # float32 values are exact as Python floats, and json writes floats with repr: lossless.
        return {"mean": [float(v) for v in self.mean.tolist()], "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalisation:
        return cls(mean=torch.tensor(data["mean"], dtype=torch.float32), scale=float(data["scale"]))


def _float64(rows: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(rows, torch.Tensor):
        return rows.detach().to("cpu", torch.float64)
    return torch.from_numpy(np.asarray(rows, dtype=np.float64))


class NormalisedSAE(nn.Module):
    """An SAE that reads and writes raw activations: it normalises on the way in, inverts on the way out.

    The mean is a buffer, so `.to(device)` moves it along with the SAE.
    """

    def __init__(self, sae: SparseAutoencoder, normalisation: Normalisation) -> None:
        super().__init__()
        if normalisation.d_in != sae.d_in:
            raise ValueError(f"normalisation has d_in={normalisation.d_in}, the SAE {sae.d_in}")
        self.sae = sae
        self.normalisation = normalisation
        self.register_buffer("mean", normalisation.mean.clone().to(sae.W_dec.device))
        self.scale = normalisation.scale

    def encode(self, x_raw: torch.Tensor) -> torch.Tensor:
        """x_raw [n, d_in] -> z [n, d_sae]."""
        x = x_raw.to(self.mean.dtype)
        return self.sae.encode((x - self.mean) * self.scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [n, d_sae] -> x_hat [n, d_in] in raw units."""
        return self.sae.decode(z) / self.scale + self.mean

    def forward(self, x_raw: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x_raw))


@torch.no_grad()
def fold_normalisation(sae: SparseAutoencoder, normalisation: Normalisation) -> SparseAutoencoder:
    """A copy of sae that reads raw activations directly (identity normalisation).

    (x - mu) s - b_dec = s (x - (mu + b_dec / s)), so W_enc' = s W_enc and b_dec' = mu + b_dec / s;
    then z W_dec / s + b_dec' = (z W_dec + b_dec) / s + mu is exactly the inverted reconstruction.
    Pre-activations are unchanged, so thresholds and k carry over. Decoder rows get norm 1 / s: the
    copy is for export to tools that cannot normalise, not for further training.
    """
    folded = copy.deepcopy(sae)
    s = normalisation.scale
    mean = normalisation.mean.to(sae.b_dec.device)
    folded.W_enc.mul_(s)
    folded.W_dec.div_(s)
    folded.b_dec.copy_(mean + sae.b_dec / s)
    return folded
