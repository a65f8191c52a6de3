"""SAELens v6 directory format (cfg.json + sae_weights.safetensors), written and read without pickle.

Concord's architectures map onto SAELens's inference ones: relu -> "standard", topk -> "topk",
matryoshka -> "topk" (its prefixes are a training device), jumprelu -> "jumprelu", batchtopk ->
"jumprelu" with the global threshold broadcast to every latent. What SAELens has no field for (the
exact Concord config, the MedSAE normalisation) goes under `metadata.concord`, so Concord reads
back exactly what it wrote while SAELens reads a valid SAE. Weights live in normalised space
unless `fold_normalisation=True`; see `inference.engine.saes.fold_normalisation`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from inference.engine.saes import (
    BatchTopKSAE,
    JumpReLUConfig,
    MatryoshkaSAE,
    NormalisedSAE,
    Normalisation,
    ReLUConfig,
    SAEConfig,
    SparseAutoencoder,
    TopKConfig,
    TopKSAE,
    build_sae,
    config_from_dict,
    fold_normalisation,
)

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
FORMAT_VERSION = 1

# Concord architecture -> the SAELens inference architecture it is stored as.
SAELENS_ARCHITECTURE = {
    "relu": "standard",
    "topk": "topk",
    "matryoshka": "topk",
    "jumprelu": "jumprelu",
    "batchtopk": "jumprelu",
}
_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


class SAEFormatError(ValueError):
    """An SAE directory that cannot be read; the message names the file, key or tensor at fault."""


@dataclass(eq=False)
class LoadedSAE:
    """An SAE read from disk (on the CPU, in eval mode), its normalisation, and cfg.json's `metadata`."""

    sae: SparseAutoencoder
    normalisation: Normalisation
    metadata: dict[str, Any]

    def normalised(self) -> NormalisedSAE:
        """The SAE wrapped to read and write raw activations."""
        return NormalisedSAE(self.sae, self.normalisation)


def save_sae(*, sae: SparseAutoencoder, normalisation: Normalisation, directory: str | os.PathLike[str],
             metadata: dict[str, Any] | None = None, fold: bool = False) -> Path:
    """Write sae as a SAELens v6 directory and return its path.

    metadata: JSON-ready keys for cfg.json's `metadata` (SAELens reads `model_name`, `hook_name`;
    Concord puts e.g. training metrics there); `concord` is reserved; NaN and infinities become
    null, as JSON has no such numbers. fold: store weights that read raw activations (for tools
    that cannot apply the normalisation); not bit-reversible.
    """
    metadata = _finite_or_null(dict(metadata or {}))
    if "concord" in metadata:
        raise ValueError("metadata key 'concord' is reserved for Concord's own fields")
    if normalisation.d_in != sae.d_in:
        raise ValueError(f"normalisation has d_in={normalisation.d_in}, the SAE {sae.d_in}")
    if fold:
        sae, normalisation = fold_normalisation(sae, normalisation), Normalisation.identity(sae.d_in)
    tensors = {name: value.detach().to("cpu", torch.float32).contiguous()
               for name, value in sae.export_tensors().items()}
    concord: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "architecture": sae.architecture,
        "config": sae.cfg.to_dict(),
        "normalisation": normalisation.to_dict(),
        "normalisation_folded": fold,
    }
    if isinstance(sae, BatchTopKSAE):
        threshold = sae.threshold.detach().to("cpu", torch.float32)
        tensors["threshold"] = threshold.expand(sae.d_sae).contiguous()
        concord["global_threshold"] = float(threshold)
    if isinstance(sae, MatryoshkaSAE):
        concord["matryoshka_widths"] = list(sae.cfg.widths)
    cfg = {
        "architecture": SAELENS_ARCHITECTURE[sae.architecture],
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {**metadata, "concord": concord},
    }
    if isinstance(sae, TopKSAE) and not isinstance(sae, BatchTopKSAE):
        cfg["k"] = sae.cfg.k
    try:
        text = json.dumps(cfg, indent=2, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"metadata must be JSON-ready: {error}") from error
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    # Weights first, config last, each renamed into place: a reader never sees a config whose
    # weights are half written.
    _replace_atomically(path / WEIGHTS_FILENAME,
                        lambda temporary: save_file(tensors, temporary, metadata={"format": "pt"}))
    _replace_atomically(path / CFG_FILENAME, lambda temporary: temporary.write_text(text))
    return path


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


def _replace_atomically(target: Path, write: Any) -> None:
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def load_sae(directory: str | os.PathLike[str]) -> LoadedSAE:
    """Read a directory written by `save_sae` or by SAELens (standard, topk, jumprelu); never unpickles.

    Raises SAEFormatError naming the problem: a missing file, invalid JSON, a missing or bad key,
    an unknown architecture, a missing, unexpected, mis-shaped or non-finite tensor, a truncated file.
    """
    path = Path(directory)
    if not path.is_dir():
        raise SAEFormatError(f"{path} is not a directory")
    for name in (CFG_FILENAME, WEIGHTS_FILENAME):
        if not (path / name).is_file():
            raise SAEFormatError(f"missing {name} in {path}")
    cfg = _read_cfg(path / CFG_FILENAME)
    metadata = cfg.get("metadata", cfg.get("meta", {})) or {}
    if not isinstance(metadata, dict):
        raise SAEFormatError(f"{CFG_FILENAME}: metadata must be an object, got {type(metadata).__name__}")
    concord = metadata.get("concord")
    if concord is not None:
        sae_cfg, normalisation = _concord_config(cfg, concord)
    else:
        sae_cfg, normalisation = _saelens_config(cfg), Normalisation.identity(cfg["d_in"])
    expected = {"W_enc": (cfg["d_in"], cfg["d_sae"]), "b_enc": (cfg["d_sae"],),
                "W_dec": (cfg["d_sae"], cfg["d_in"]), "b_dec": (cfg["d_in"],)}
    if cfg["architecture"] == "jumprelu":
        expected["threshold"] = (cfg["d_sae"],)
    tensors = _read_tensors(path / WEIGHTS_FILENAME, expected)
    if not cfg.get("apply_b_dec_to_input", True):
        # SAELens without input centring computes x W_enc + b_enc; Concord always subtracts b_dec
        # first, so fold b_dec W_enc into b_enc to get the same pre-activations.
        tensors["b_enc"] = (tensors["b_enc"].double() + tensors["b_dec"].double() @ tensors["W_enc"].double()).float()
    sae = build_sae(sae_cfg)
    if isinstance(sae, BatchTopKSAE):
        threshold = tensors.pop("threshold")
        if not bool((threshold == threshold[0]).all()):
            raise SAEFormatError(f"{WEIGHTS_FILENAME}: a batchtopk SAE needs one global threshold, "
                                 "but tensor 'threshold' differs between latents")
        sae.threshold.copy_(threshold[0])
    elif "threshold" in tensors and bool((tensors["threshold"] < 0).any()):
        raise SAEFormatError(f"{WEIGHTS_FILENAME}: tensor 'threshold' has negative entries")
    sae.import_tensors(tensors)
    return LoadedSAE(sae=sae.eval(), normalisation=normalisation, metadata=metadata)


def _read_cfg(path: Path) -> dict[str, Any]:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SAEFormatError(f"{CFG_FILENAME} is not valid JSON: {error}") from error
    except RecursionError:
        raise SAEFormatError(f"{CFG_FILENAME} is nested too deeply to be an SAE config") from None
    if not isinstance(cfg, dict):
        raise SAEFormatError(f"{CFG_FILENAME} must hold a JSON object, got {type(cfg).__name__}")
    for key in ("d_in", "d_sae"):
        value = cfg.get(key)
        if value is None:
            raise SAEFormatError(f"{CFG_FILENAME}: missing key '{key}'")
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SAEFormatError(f"{CFG_FILENAME}: '{key}' must be a positive integer, got {value!r}")
    architecture = cfg.get("architecture")
    if architecture is None:
        raise SAEFormatError(f"{CFG_FILENAME}: missing key 'architecture'")
    supported = sorted(set(SAELENS_ARCHITECTURE.values()))
    if architecture not in supported:
        raise SAEFormatError(f"{CFG_FILENAME}: unknown architecture {architecture!r}; "
                             f"supported: {', '.join(supported)}")
    if not isinstance(cfg.get("apply_b_dec_to_input", True), bool):
        raise SAEFormatError(f"{CFG_FILENAME}: 'apply_b_dec_to_input' must be true or false")
    normalize = cfg.get("normalize_activations", "none")
    if normalize not in ("none", None):
        raise SAEFormatError(f"{CFG_FILENAME}: normalize_activations={normalize!r} is not supported "
                             "(fold the scaling into the weights, or store Concord normalisation)")
    if cfg.get("reshape_activations", "none") not in ("none", None):
        raise SAEFormatError(f"{CFG_FILENAME}: reshape_activations={cfg['reshape_activations']!r} is not supported")
    return cfg


def _concord_config(cfg: dict[str, Any], concord: Any) -> tuple[SAEConfig, Normalisation]:
    where = f"{CFG_FILENAME}: metadata.concord"
    if not isinstance(concord, dict):
        raise SAEFormatError(f"{where} must be an object")
    for key in ("config", "normalisation"):
        if key not in concord:
            raise SAEFormatError(f"{where}: missing key '{key}'")
    try:
        sae_cfg = config_from_dict(concord["config"])
    except (ValueError, TypeError) as error:
        raise SAEFormatError(f"{where}.config: {error}") from error
    if SAELENS_ARCHITECTURE[sae_cfg.architecture] != cfg["architecture"]:
        raise SAEFormatError(f"{where}: a {sae_cfg.architecture} SAE is stored as "
                             f"{SAELENS_ARCHITECTURE[sae_cfg.architecture]!r}, not {cfg['architecture']!r}")
    for key in ("d_in", "d_sae"):
        if getattr(sae_cfg, key) != cfg[key]:
            raise SAEFormatError(f"{where}.config: {key}={getattr(sae_cfg, key)} but cfg.json says {cfg[key]}")
    if "k" in cfg and getattr(sae_cfg, "k", cfg["k"]) != cfg["k"]:
        raise SAEFormatError(f"{where}.config: k={sae_cfg.k} but cfg.json says k={cfg['k']}")
    try:
        normalisation = Normalisation.from_dict(concord["normalisation"])
    except (KeyError, TypeError, ValueError) as error:
        raise SAEFormatError(f"{where}.normalisation is invalid: {error}") from error
    if normalisation.d_in != cfg["d_in"]:
        raise SAEFormatError(f"{where}.normalisation: mean has {normalisation.d_in} entries, d_in is {cfg['d_in']}")
    return sae_cfg, normalisation


def _saelens_config(cfg: dict[str, Any]) -> SAEConfig:
    d_in, d_sae, architecture = cfg["d_in"], cfg["d_sae"], cfg["architecture"]
    if architecture == "standard":
        return ReLUConfig(d_in=d_in, d_sae=d_sae)
    if architecture == "jumprelu":
        return JumpReLUConfig(d_in=d_in, d_sae=d_sae)
    k = cfg.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or not 0 < k <= d_sae:
        raise SAEFormatError(f"{CFG_FILENAME}: a topk SAE needs an integer 'k' in [1, d_sae={d_sae}], got {k!r}")
    return TopKConfig(d_in=d_in, d_sae=d_sae, k=k)


def _read_tensors(path: Path, expected: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = set(handle.keys())
            for name in expected:
                if name not in names:
                    raise SAEFormatError(f"{WEIGHTS_FILENAME}: missing tensor '{name}'")
            unexpected = sorted(names - set(expected))
            if unexpected:
                raise SAEFormatError(f"{WEIGHTS_FILENAME}: unexpected tensor(s) {', '.join(map(repr, unexpected))}")
            for name, shape in expected.items():
                try:
                    tensors[name] = handle.get_tensor(name)
                except Exception as error:  # safetensors raises its own error types for short files
                    raise SAEFormatError(f"{WEIGHTS_FILENAME}: tensor '{name}' cannot be read "
                                         f"(truncated file?): {error}") from error
    except SAEFormatError:
        raise
    except Exception as error:
        raise SAEFormatError(f"{WEIGHTS_FILENAME} is truncated or not a safetensors file: {error}") from error
    for name, shape in expected.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != shape:
            raise SAEFormatError(f"{WEIGHTS_FILENAME}: tensor '{name}' has shape {list(tensor.shape)}, "
                                 f"expected {list(shape)}")
        if tensor.dtype not in _FLOATS:
            raise SAEFormatError(f"{WEIGHTS_FILENAME}: tensor '{name}' has dtype {tensor.dtype}, expected a float type")
        if not bool(torch.isfinite(tensor).all()):
            raise SAEFormatError(f"{WEIGHTS_FILENAME}: tensor '{name}' contains NaN or infinite values")
        tensors[name] = tensor.to(torch.float32)
    return tensors

