"""SAE architectures (one module and one config each), their factory and the input normalisation."""

from __future__ import annotations

from typing import Any

import torch

from inference.engine.saes.base import ForwardOutput, SAEConfig, SparseAutoencoder
from inference.engine.saes.batchtopk import BatchTopKConfig, BatchTopKSAE
from inference.engine.saes.jumprelu import JumpReLUConfig, JumpReLUSAE
from inference.engine.saes.matryoshka import MatryoshkaConfig, MatryoshkaSAE
from inference.engine.saes.normalisation import Normalisation, NormalisedSAE, fold_normalisation
from inference.engine.saes.relu import ReLUConfig, ReLUSAE
from inference.engine.saes.topk import TopKConfig, TopKSAE

ARCHITECTURES: dict[str, type[SparseAutoencoder]] = {
    cls.architecture: cls for cls in (ReLUSAE, TopKSAE, BatchTopKSAE, JumpReLUSAE, MatryoshkaSAE)
}


def build_sae(cfg: SAEConfig, *, seed: int = 0, device: torch.device | None = None) -> SparseAutoencoder:
    """A freshly initialised SAE for cfg; the same seed gives the same weights on any device."""
    if type(cfg).architecture not in ARCHITECTURES:
        raise ValueError(f"unknown SAE config {type(cfg).__name__}")
    generator = torch.Generator().manual_seed(seed)
    sae = ARCHITECTURES[cfg.architecture](cfg, generator=generator)
    return sae.to(device) if device is not None else sae


def config_from_dict(data: dict[str, Any]) -> SAEConfig:
    """Rebuild a config from `SAEConfig.to_dict()` output; unknown architecture or fields raise ValueError."""
    fields = dict(data)
    architecture = fields.pop("architecture", None)
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}")
    config_class = ARCHITECTURES[architecture].config_class
    try:
        return config_class(**fields)
    except TypeError as error:
        raise ValueError(f"bad {architecture} config {data!r}: {error}") from error


__all__ = [
    "ARCHITECTURES",
    "BatchTopKConfig",
    "BatchTopKSAE",
    "ForwardOutput",
    "JumpReLUConfig",
    "JumpReLUSAE",
    "MatryoshkaConfig",
    "MatryoshkaSAE",
    "NormalisedSAE",
    "Normalisation",
    "ReLUConfig",
    "ReLUSAE",
    "SAEConfig",
    "SparseAutoencoder",
    "TopKConfig",
    "TopKSAE",
    "build_sae",
    "config_from_dict",
    "fold_normalisation",
]
