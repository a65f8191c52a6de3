"""SAELens v6 directory format (cfg.json + sae_weights.safetensors), written and read without pickle.

Concord's architectures map onto SAELens's inference ones: relu -> "standard", topk -> "topk",
matryoshka -> "topk" (its prefixes are a training device), jumprelu -> "jumprelu", batchtopk ->
"jumprelu" with the global threshold broadcast to every latent. What SAELens has no field for (the
exact Concord config, the MedSAE normalisation) goes under `metadata.concord`, so Concord reads
back exactly what it wrote while SAELens reads a valid SAE: `metadata.sae_lens_version` marks the
file as SAELens 6, which keeps every `metadata` key (older-looking files lose them). Concord's own
artifacts keep weights in normalised space (bit-reversible); `export_sae_directory` folds the
normalisation into the weights by default, so that SAELens fed raw activations computes Concord's
latents; see `inference.engine.saes.fold_normalisation`.

Reading, every cfg.json flag that changes the encoding is honoured (`apply_b_dec_to_input`,
`rescale_acts_by_decoder_norm` on topk) or refused with the reason (`normalize_activations` other
than "none", `reshape_activations`): a file is never read into different latents silently.
"""

from __future__ import annotations

import json
import math
import os
import warnings
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
    Normalisation,
    NormalisedSAE,
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
# The SAELens release whose cfg.json layout this writes (`metadata` holds model_name, hook_name, ...);
# SAELens treats files without it, or older, as pre-6.0 and rewrites them. Checked against 6.54.12.
SAELENS_VERSION = "6.0.0"
# Every metadata key SAELens 6 reads, with the value Concord writes when the caller knows no better:
# SAELens's own defaults, except that Concord captures one snippet per sequence, unconcatenated.
SAELENS_METADATA_DEFAULTS: dict[str, Any] = {
    "sae_lens_training_version": None,  # not trained by SAELens
    "model_name": None,
    "model_class_name": None,
    "model_from_pretrained_kwargs": {},
    "hook_name": None,
    "hook_head_index": None,
    "context_size": None,
    "prepend_bos": True,
    "seqpos_slice": [None],
    "dataset_path": None,
    "exclude_special_tokens": False,
    "sequence_separator_token": None,
    "disable_concat_sequences": True,
    "neuronpedia_id": None,
}

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


class UnfoldedExportWarning(UserWarning):
    """An exported SAE expects normalised inputs: fed raw activations, other tools compute other latents."""


@dataclass(eq=False)
class LoadedSAE:
    """An SAE read from disk (on the CPU, in eval mode), its normalisation, and cfg.json's `metadata`."""

    sae: SparseAutoencoder
    normalisation: Normalisation
    metadata: dict[str, Any]

    def normalised(self) -> NormalisedSAE:
        """The SAE wrapped to read and write raw activations."""
        return NormalisedSAE(self.sae, self.normalisation)


def save_sae(
    *,
    sae: SparseAutoencoder,
    normalisation: Normalisation,
    directory: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    fold: bool = False,
) -> Path:
    """Write sae as a SAELens v6 directory and return its path.

    metadata: JSON-ready keys for cfg.json's `metadata` (SAELens reads `model_name`, `hook_name`, ...:
    see SAELENS_METADATA_DEFAULTS, which fill what is not given; Concord puts e.g. training metrics
    there); `concord`, `sae_lens_version` and `input_normalisation` are reserved; NaN and
    infinities become null, as JSON has no such numbers. fold: store weights that read raw
    activations (for tools that cannot apply the normalisation); not bit-reversible. Unfolded with a
    normalisation that is not the identity, `metadata.input_normalisation` states it in words and
    numbers, for readers that know nothing of `metadata.concord`.
    """
    metadata = _finite_or_null(dict(metadata or {}))
    for reserved in ("concord", "sae_lens_version", "input_normalisation"):
        if reserved in metadata:
            raise ValueError(f"metadata key '{reserved}' is reserved for Concord's own fields")
    metadata = {"sae_lens_version": SAELENS_VERSION, **SAELENS_METADATA_DEFAULTS, **metadata}
    if normalisation.d_in != sae.d_in:
        raise ValueError(f"normalisation has d_in={normalisation.d_in}, the SAE {sae.d_in}")
    if fold:
        sae, normalisation = fold_normalisation(sae, normalisation), Normalisation.identity(sae.d_in)
    elif not normalisation.is_identity():
        metadata["input_normalisation"] = {
            "rule": "encode (x - mean) * scale, not x; the reconstruction is x_hat / scale + mean "
            "(MedSAE normalisation, not folded into the weights)",
            "mean": normalisation.to_dict()["mean"],
            "scale": normalisation.scale,
        }
    tensors = {
        name: value.detach().to("cpu", torch.float32).contiguous() for name, value in sae.export_tensors().items()
    }
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
    _replace_atomically(
        path / WEIGHTS_FILENAME, lambda temporary: save_file(tensors, temporary, metadata={"format": "pt"})
    )
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


def export_sae_directory(
    *,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    fold: bool = True,
    model_name: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> list[str]:
    """Write the SAE stored at source as a SAELens directory for other tools; returns the warnings.

    fold (the default) stores weights that read raw activations, so SAELens computes Concord's
    latents from the host model's activations as they are. Unfolded, the weights expect normalised
    inputs: an UnfoldedExportWarning is raised (as a warning) and returned. model_name replaces
    the stored one (exports name the model by its id, never a local path); metadata adds keys.
    """
    loaded = load_sae(source)
    kept = {
        key: value
        for key, value in loaded.metadata.items()
        if key not in ("concord", "sae_lens_version", "input_normalisation")
    }
    kept.update(metadata or {})
    if model_name is not None:
        kept["model_name"] = model_name
    messages = []
    if not fold and not loaded.normalisation.is_identity():
        messages.append(
            "unfolded export: these weights expect normalised activations, (x - mean) * scale, "
            "as stated in metadata.input_normalisation; SAELens or any other tool fed raw "
            "activations computes different latents. Export with fold on unless you will "
            "normalise the inputs yourself."
        )
        warnings.warn(messages[-1], UnfoldedExportWarning, stacklevel=2)
    save_sae(sae=loaded.sae, normalisation=loaded.normalisation, directory=target, metadata=kept, fold=fold)
    return messages


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
    expected = {
        "W_enc": (cfg["d_in"], cfg["d_sae"]),
        "b_enc": (cfg["d_sae"],),
        "W_dec": (cfg["d_sae"], cfg["d_in"]),
        "b_dec": (cfg["d_in"],),
    }
    if cfg["architecture"] == "jumprelu":
        expected["threshold"] = (cfg["d_sae"],)
    tensors = _read_tensors(path / WEIGHTS_FILENAME, expected)
    if not cfg.get("apply_b_dec_to_input", True):
        # SAELens without input centring computes x W_enc + b_enc; Concord always subtracts b_dec
        # first, so fold b_dec W_enc into b_enc to get the same pre-activations.
        tensors["b_enc"] = (tensors["b_enc"].double() + tensors["b_dec"].double() @ tensors["W_enc"].double()).float()
    if cfg.get("rescale_acts_by_decoder_norm", False):
        # SAELens's topk multiplies pre-activation i by ||W_dec[i]|| before the top-k and divides the
        # code by it before decoding: the same as scaling encoder column i up and decoder row i down.
        norms = tensors["W_dec"].double().norm(dim=1)
        tensors["W_enc"] = (tensors["W_enc"].double() * norms).float()
        tensors["b_enc"] = (tensors["b_enc"].double() * norms).float()
        tensors["W_dec"] = (tensors["W_dec"].double() / norms[:, None]).float()
    sae = build_sae(sae_cfg)
    if isinstance(sae, BatchTopKSAE):
        threshold = tensors.pop("threshold")
        if not bool((threshold == threshold[0]).all()):
            raise SAEFormatError(
                f"{WEIGHTS_FILENAME}: a batchtopk SAE needs one global threshold, "
                "but tensor 'threshold' differs between latents"
            )
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
        raise SAEFormatError(
            f"{CFG_FILENAME}: unknown architecture {architecture!r}; supported: {', '.join(supported)}"
        )
    if not isinstance(cfg.get("apply_b_dec_to_input", True), bool):
        raise SAEFormatError(f"{CFG_FILENAME}: 'apply_b_dec_to_input' must be true or false")
    normalize = cfg.get("normalize_activations", "none")
    if normalize not in ("none", None):
        reason = _UNSUPPORTED_NORMALISATION.get(normalize, "an unknown normalisation mode")
        raise SAEFormatError(
            f"{CFG_FILENAME}: normalize_activations={normalize!r} is not supported: {reason}. "
            "Fold the normalisation into the weights (SAELens: fold_activation_norm_scaling_factor "
            "or fold_activation_whitening) and save again with normalize_activations='none'"
        )
    rescale = cfg.get("rescale_acts_by_decoder_norm", False)
    if not isinstance(rescale, bool):
        raise SAEFormatError(f"{CFG_FILENAME}: 'rescale_acts_by_decoder_norm' must be true or false")
    if rescale and architecture != "topk":
        raise SAEFormatError(
            f"{CFG_FILENAME}: rescale_acts_by_decoder_norm=true on a {architecture!r} SAE: "
            "SAELens applies it only to topk and ignores it here, so the intended "
            "encoding is ambiguous; fold the decoder norms into the weights first"
        )
    if cfg.get("reshape_activations", "none") not in ("none", None):
        raise SAEFormatError(f"{CFG_FILENAME}: reshape_activations={cfg['reshape_activations']!r} is not supported")
    return cfg


_UNSUPPORTED_NORMALISATION = {
    "expected_average_only_in": "the weights expect activations scaled by a dataset-wide factor that "
    "the directory does not store",
    "constant_norm_rescale": "each token is rescaled by its own norm, which Concord's fixed affine "
    "normalisation cannot express",
    "layer_norm": "each token is layer-normalised by its own mean and spread, which Concord's fixed affine "
    "normalisation cannot express",
    "covariance_whitening": "the whitening matrix is not part of the directory's weights",
}


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
        raise SAEFormatError(
            f"{where}: a {sae_cfg.architecture} SAE is stored as "
            f"{SAELENS_ARCHITECTURE[sae_cfg.architecture]!r}, not {cfg['architecture']!r}"
        )
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
            for name in expected:
                try:
                    tensors[name] = handle.get_tensor(name)
                except Exception as error:  # safetensors raises its own error types for short files
                    raise SAEFormatError(
                        f"{WEIGHTS_FILENAME}: tensor '{name}' cannot be read (truncated file?): {error}"
                    ) from error
    except SAEFormatError:
        raise
    except Exception as error:
        raise SAEFormatError(f"{WEIGHTS_FILENAME} is truncated or not a safetensors file: {error}") from error
    for name, shape in expected.items():
        tensor = tensors[name]
        if tuple(tensor.shape) != shape:
            raise SAEFormatError(
                f"{WEIGHTS_FILENAME}: tensor '{name}' has shape {list(tensor.shape)}, expected {list(shape)}"
            )
        if tensor.dtype not in _FLOATS:
            raise SAEFormatError(f"{WEIGHTS_FILENAME}: tensor '{name}' has dtype {tensor.dtype}, expected a float type")
        if not bool(torch.isfinite(tensor).all()):
            raise SAEFormatError(f"{WEIGHTS_FILENAME}: tensor '{name}' contains NaN or infinite values")
        tensors[name] = tensor.to(torch.float32)
    return tensors
