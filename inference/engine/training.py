"""SAE training: seeded batches, Adam with warm-up and decay, held-out metrics, checkpoints that resume exactly."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from inference.engine.devices import autocast_dtype, is_cuda, resolve_device, supports_fused_adam, synchronize
from inference.engine.saes import (
    MatryoshkaSAE,
    Normalisation,
    SAEConfig,
    SparseAutoencoder,
    TopKSAE,
    build_sae,
    config_from_dict,
)
from inference.engine.saes.base import is_int, is_number, require

Progress = Callable[[float, str], None]
_DTYPES = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16}
_CHECKPOINT = re.compile(r"^step-(\d{10})$")
_CHECKPOINT_FORMAT = 1


class Activations(Protocol):
    """What `train_sae` reads: a numpy array, an np.memmap, or an ActivationStore."""

    shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def __getitem__(self, rows: np.ndarray) -> np.ndarray: ...


class CheckpointMismatchError(ValueError):
    """checkpoint_dir holds a run with another SAE config, seed or data; resuming would mix two runs."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """How to train; the SAE itself is described by its own config."""

    steps: int = 10_000
    """Optimiser steps; tokens seen = steps * batch_size. 10,000 steps of 4,096 tokens is 41 M
    tokens, the order of magnitude at which published 16k-latent SAEs stop improving quickly;
    small SAEs on planted data converge within a few hundred steps."""
    batch_size: int = 4096
    """Tokens per step, drawn uniformly with replacement from the training rows. 4,096 is the
    batch of Anthropic's and OpenAI's SAE runs and of SAELens's default; large enough that the
    top-k selection and the dead-latent statistics are stable per step."""
    lr: float | None = None
    """Peak Adam learning rate; None (the default) means `default_learning_rate(d_sae)` =
    2e-4 / sqrt(d_sae / 2**14), the width scaling of EleutherAI's sparsify (after Gao et al. 2024,
    who fit the optimal rate as falling with the number of latents): 2e-4 at 16k latents, 1.1e-3 at
    512. A fixed 2e-4 under-trains small SAEs (FVE 0.52 and no planted atom recovered at 512
    latents in 1,000 steps, against 98% at 1e-3)."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """Adam's (beta1, beta2): PyTorch's defaults, which sparsify and SAELens also use."""
    adam_eps: float = 1e-8
    """Adam's epsilon: PyTorch's default; gradients of unit-norm decoder rows are far above it."""
    warmup_steps: int = 0
    """Steps over which the learning rate rises linearly from lr / warmup_steps to lr. 0: the tied
    initialisation (W_enc = W_dec^T) starts every latent as a matched filter, so the first steps
    are not the large noisy ones a warm-up guards against (sparsify uses none for TopK either)."""
    decay_start: float = 0.8
    """Fraction of `steps` after which the learning rate falls linearly to 0 at the last step; 1 = no
    decay. The last 20% as in Anthropic's April 2024 update, which lowers the final loss measurably."""
    sparsity_warmup_steps: int = 0
    """Steps over which the sparsity coefficient (l1 / l0) rises linearly from 0 to its value. 0:
    TopK-family SAEs have no coefficient; for ReLU/JumpReLU set ~5% of steps (Anthropic's April 2024
    update warms the L1 over the first 5%) to keep latents from dying before they find a direction."""
    seed: int = 0
    """Seeds the initial weights, the normalisation sample and every batch: batch i is a function of (seed, i)."""
    checkpoint_every: int = 1000
    """Steps between checkpoints when a checkpoint_dir is given; one is always written at the end (0 = only then).
    1,000 steps: a checkpoint of a 16k x 768 SAE with Adam's state is ~300 MB, rare enough that
    writing it is a small share of the run, while a killed job loses at most 1,000 steps."""
    dead_window_tokens: int = 10_000_000
    """A latent that has not fired over this many training tokens is dead (AuxK and `dead_fraction`).
    10 M tokens is Gao et al.'s window (sec. A.2)."""
    holdout_fraction: float = 0.05
    """Fraction of rows, taken from the tail, kept out of training for the metrics: 5% is enough
    for FVE to two decimals on a corpus of ~100k tokens and costs training little."""
    max_holdout_tokens: int = 100_000
    """Cap on held-out rows (the last ones): FVE's standard error is ~1e-3 by then, and larger holdouts
    only slow the evaluation."""
    normalisation_tokens: int = 65_536
    """Training rows sampled to fit the normalisation's mean and scale: the mean norm is then known
    to ~0.1%, which is all `Normalisation.fit` needs."""
    log_every: int = 50
    """Steps between history entries and progress calls: a few hundred points for a typical run,
    each a host sync that costs nothing measurable at this interval."""
    eval_batch_size: int = 4096
    """Tokens per batch in the held-out evaluation (the training batch: its memory is already known to fit)."""
    device: str = "auto"
    """'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:N'."""
    dtype: str = "auto"
    """Autocast compute dtype: 'auto' (bf16 on CUDA, fp32 on CPU), 'float32' or 'bfloat16'. Weights stay fp32.
    bf16 on CUDA roughly doubles matmul throughput at no measurable FVE cost; CPUs lack fast bf16."""
    deterministic: bool = False
    """Ask torch for deterministic kernels: needed for bit-identical resume on CUDA, slower; CPU runs are anyway."""

    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = (
        "steps",
        "checkpoint_every",
        "log_every",
        "eval_batch_size",
        "device",
        "deterministic",
    )
    """Fields that may differ between a checkpoint and the run resuming it (`steps` extends a run)."""

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "log_every",
            "eval_batch_size",
            "dead_window_tokens",
            "max_holdout_tokens",
            "normalisation_tokens",
        ):
            value = getattr(self, name)
            require(is_int(value) and value > 0, f"{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "sparsity_warmup_steps", "checkpoint_every", "seed"):
            value = getattr(self, name)
            require(is_int(value) and value >= 0, f"{name} must be a non-negative integer, got {value!r}")
        require(
            self.lr is None or (is_number(self.lr) and 0 < self.lr < math.inf),
            f"lr must be None (width-scaled default) or a positive number, got {self.lr!r}",
        )
        betas = tuple(self.adam_betas) if isinstance(self.adam_betas, (list, tuple)) else ()
        require(
            len(betas) == 2 and all(is_number(b) and 0 <= b < 1 for b in betas),
            f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}",
        )
        object.__setattr__(self, "adam_betas", betas)
        require(is_number(self.adam_eps) and self.adam_eps > 0, f"adam_eps must be positive, got {self.adam_eps!r}")
        require(
            is_number(self.decay_start) and 0 <= self.decay_start <= 1,
            f"decay_start must be a fraction in [0, 1], got {self.decay_start!r}",
        )
        require(
            is_number(self.holdout_fraction) and 0 < self.holdout_fraction <= 0.5,
            f"holdout_fraction must be in (0, 0.5], got {self.holdout_fraction!r}",
        )
        require(self.dtype in _DTYPES, f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        require(isinstance(self.device, str) and self.device != "", f"device must be a string, got {self.device!r}")
        require(isinstance(self.deterministic, bool), f"deterministic must be a bool, got {self.deterministic!r}")

    def for_width(self, d_sae: int) -> TrainingConfig:
        """This config with `lr` resolved: the given one, or the width-scaled default for d_sae latents."""
        return self if self.lr is not None else dataclasses.replace(self, lr=default_learning_rate(d_sae))

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in dataclasses.fields(self)
        }


@dataclass(eq=False)
class TrainingResult:
    """sae: trained, in eval mode, on the training device. metrics: held-out floats (`mse` in raw
    units per element, `mse_normalised` per token as in the loss, `fvu`, `fve`, `l0`,
    `dead_fraction` over the last dead_window_tokens of training, `dead_fraction_holdout`, ...).
    device_seconds: wall seconds of training and evaluation, summed over resumed segments."""

    sae: SparseAutoencoder
    normalisation: Normalisation
    metrics: dict[str, float]
    steps_done: int
    device_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def default_learning_rate(d_sae: int) -> float:
    """2e-4 / sqrt(d_sae / 2**14): sparsify's width scaling of Adam's rate (see `TrainingConfig.lr`)."""
    require(is_int(d_sae) and d_sae > 0, f"d_sae must be a positive integer, got {d_sae!r}")
    return 2e-4 / math.sqrt(d_sae / 2**14)


def learning_rate(cfg: TrainingConfig, step: int) -> float:
    """Learning rate of step (0-based): linear warm-up, constant, linear decay to 0. cfg.lr must be resolved."""
    require(cfg.lr is not None, "resolve the learning rate first: TrainingConfig.for_width(d_sae)")
    lr = cfg.lr
    if step < cfg.warmup_steps:
        lr *= (step + 1) / cfg.warmup_steps
    decay_from = int(cfg.decay_start * cfg.steps)
    if step >= decay_from and cfg.steps > decay_from:
        lr *= (cfg.steps - step) / (cfg.steps - decay_from)
    return lr


def sparsity_scale(cfg: TrainingConfig, step: int) -> float:
    if cfg.sparsity_warmup_steps == 0:
        return 1.0
    return min(1.0, (step + 1) / cfg.sparsity_warmup_steps)


def batch_rows(seed: int, step: int, batch_size: int, n_train: int) -> np.ndarray:
    """Sorted row indices of batch `step`: a pure function of (seed, step), which is what makes resume exact."""
    rows = np.random.default_rng([seed, step]).integers(0, n_train, size=batch_size)
    rows.sort()  # sorted reads are sequential on a memmap
    return rows


def holdout_size(n_rows: int, cfg: TrainingConfig) -> int:
    return max(1, min(round(n_rows * cfg.holdout_fraction), cfg.max_holdout_tokens, n_rows - 1))


class _Rows:
    """A row subset of `activations`, indexable by integer arrays (what `Normalisation.fit` reads)."""

    def __init__(self, activations: Activations, rows: np.ndarray) -> None:
        self.activations = activations
        self.rows = rows
        self.shape = (len(rows), activations.shape[1])
        self.ndim = 2

    def __getitem__(self, index: slice) -> np.ndarray:
        return np.asarray(self.activations[self.rows[index]])


def _read(activations: Activations, rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(activations[rows], dtype=np.float32))


class _DeadLatents:
    """Tokens since each latent last fired, kept on the device (no host sync per step)."""

    def __init__(self, d_sae: int, window: int, device: torch.device) -> None:
        self.window = window
        self.tokens_since_fired = torch.zeros(d_sae, dtype=torch.long, device=device)
        self.tokens_seen = 0

    def update(self, fired: torch.Tensor, n_tokens: int) -> None:
        self.tokens_since_fired += n_tokens
        self.tokens_since_fired.masked_fill_(fired, 0)
        self.tokens_seen += n_tokens

    def mask(self) -> torch.Tensor:
        """[d_sae] bool: latents that have not fired over the last `window` tokens (none before
        `window` tokens were seen: AuxK should not chase latents that merely have not fired yet)."""
        return self.tokens_since_fired >= self.window

    def fraction(self) -> float:
        """Share of latents silent over the last min(window, tokens seen) tokens (the reported metric)."""
        if self.tokens_seen == 0:
            return 0.0
        return float((self.tokens_since_fired >= min(self.window, self.tokens_seen)).float().mean())


@dataclass
class _State:
    sae: SparseAutoencoder
    optimizer: torch.optim.Optimizer
    normalisation: Normalisation
    dead: _DeadLatents
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    device_seconds: float = 0.0


def train_sae(
    *,
    sae_cfg: SAEConfig,
    train_cfg: TrainingConfig,
    activations: Activations,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Train an SAE on activations [n, d_in], evaluating on the held-out tail.

    With a checkpoint_dir, a checkpoint is written every `checkpoint_every` steps and at the end, and
    a later call with the same configs resumes from the newest one: on CPU (or CUDA with
    `deterministic=True`) the result is bit-identical to an uninterrupted run.
    """
    train_cfg = train_cfg.for_width(sae_cfg.d_sae)
    n_rows = len(activations)
    require(
        len(activations.shape) == 2 and activations.shape[1] == sae_cfg.d_in,
        f"activations have shape {tuple(activations.shape)}, the SAE expects [n, d_in={sae_cfg.d_in}]",
    )
    require(n_rows >= 2, f"need at least 2 activation rows, got {n_rows}")
    n_holdout = holdout_size(n_rows, train_cfg)
    n_train = n_rows - n_holdout
    device = resolve_device(train_cfg.device)
    compute_dtype = _DTYPES[train_cfg.dtype] or autocast_dtype(device)
    report = progress or (lambda fraction, message: None)
    directory = Path(checkpoint_dir) if checkpoint_dir is not None else None
    fingerprint = {"sae": sae_cfg.to_dict(), "training": train_cfg.to_dict(), "n_rows": n_rows, "d_in": sae_cfg.d_in}

    previous_determinism = torch.are_deterministic_algorithms_enabled()
    if train_cfg.deterministic:
        if is_cuda(device):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    try:
        state = _resume(directory, fingerprint, sae_cfg, train_cfg, device) if directory else None
        if state is None:
            state = _fresh_state(sae_cfg, train_cfg, activations, n_train, device)
            report(0.0, f"training {sae_cfg.architecture} SAE d_sae={sae_cfg.d_sae} on {n_train} tokens ({device})")
        else:
            report(state.step / train_cfg.steps, f"resumed at step {state.step}/{train_cfg.steps}")
        segment_start = time.perf_counter()
        seconds_before = state.device_seconds

        def elapsed() -> float:
            synchronize(device)
            return seconds_before + time.perf_counter() - segment_start

        _run_steps(
            state, train_cfg, activations, n_train, device, compute_dtype, directory, fingerprint, elapsed, report
        )
        report(state.step / train_cfg.steps, f"evaluating on {n_holdout} held-out tokens")
        metrics = evaluate_sae(
            sae=state.sae,
            normalisation=state.normalisation,
            activations=activations,
            rows=np.arange(n_train, n_rows),
            batch_size=train_cfg.eval_batch_size,
            device=device,
            compute_dtype=compute_dtype,
        )
        metrics["dead_fraction"] = state.dead.fraction()
        metrics["tokens_trained"] = float(state.step * train_cfg.batch_size)
        device_seconds = elapsed()
    finally:
        torch.use_deterministic_algorithms(previous_determinism)
    report(1.0, f"done: fve={metrics['fve']:.4f} l0={metrics['l0']:.1f} dead={metrics['dead_fraction']:.3f}")
    return TrainingResult(
        sae=state.sae.eval(),
        normalisation=state.normalisation,
        metrics=metrics,
        steps_done=state.step,
        device_seconds=device_seconds,
        history=state.history,
    )


def _fresh_state(
    sae_cfg: SAEConfig, cfg: TrainingConfig, activations: Activations, n_train: int, device: torch.device
) -> _State:
    sample_size = min(cfg.normalisation_tokens, n_train)
    sample = np.sort(np.random.default_rng([cfg.seed]).choice(n_train, size=sample_size, replace=False))
    normalisation = Normalisation.fit(_Rows(activations, sample))
    sae = build_sae(sae_cfg, seed=cfg.seed, device=device)
    return _State(
        sae=sae,
        optimizer=_optimizer(sae, cfg, device),
        normalisation=normalisation,
        dead=_DeadLatents(sae_cfg.d_sae, cfg.dead_window_tokens, device),
    )


def _optimizer(sae: SparseAutoencoder, cfg: TrainingConfig, device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        sae.parameters(), lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps, fused=supports_fused_adam(device) or None
    )


def _run_steps(
    state: _State,
    cfg: TrainingConfig,
    activations: Activations,
    n_train: int,
    device: torch.device,
    compute_dtype: torch.dtype,
    directory: Path | None,
    fingerprint: dict[str, Any],
    elapsed: Callable[[], float],
    report: Progress,
) -> None:
    sae, optimizer = state.sae.train(), state.optimizer
    mean = state.normalisation.mean.to(device)
    scale = state.normalisation.scale
    use_autocast = compute_dtype != torch.float32

    def fetch(step: int) -> torch.Tensor:
        batch = _read(activations, batch_rows(cfg.seed, step, cfg.batch_size, n_train))
        return batch.pin_memory() if is_cuda(device) else batch

    # One batch is read ahead on a thread while the device works on the current one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sae-batches") as reader:
        pending = reader.submit(fetch, state.step) if state.step < cfg.steps else None
        while state.step < cfg.steps:
            step = state.step
            batch = pending.result().to(device, non_blocking=True)
            pending = reader.submit(fetch, step + 1) if step + 1 < cfg.steps else None
            x = (batch - mean) * scale
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step)
            with torch.autocast(device.type, dtype=compute_dtype, enabled=use_autocast):
                out = sae(x, dead_latents=state.dead.mask(), sparsity_scale=sparsity_scale(cfg, step))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            sae.constrain_decoder_gradient()
            optimizer.step()
            sae.after_step()
            state.dead.update(out.active_latents(), cfg.batch_size)
            state.step = step + 1
            done = state.step
            if done % cfg.log_every == 0 or done == cfg.steps:
                entry = _history_entry(state, out, learning_rate(cfg, step))
                state.history.append(entry)
                report(
                    done / cfg.steps,
                    f"step {done}/{cfg.steps} loss {entry['loss']:.4f} mse {entry['mse']:.4f} l0 {entry['l0']:.1f}",
                )
            periodic = cfg.checkpoint_every and done % cfg.checkpoint_every == 0
            if directory is not None and (done == cfg.steps or periodic):
                state.device_seconds = elapsed()
                _write_checkpoint(directory, state, fingerprint)
    sae.eval()


def _history_entry(state: _State, out: Any, lr: float) -> dict[str, float]:
    loss = float(out.loss.detach())
    if not math.isfinite(loss):
        raise TrainingDivergedError(f"loss became {loss} at step {state.step}; lower lr or check the activations")
    entry = {"step": float(state.step), "lr": lr, "loss": loss}
    entry.update({name: float(value.detach()) for name, value in out.losses.items()})
    entry["l0"] = float(out.l0())
    entry["dead_fraction"] = state.dead.fraction()
    return entry


@torch.no_grad()
def evaluate_sae(
    *,
    sae: SparseAutoencoder,
    normalisation: Normalisation,
    activations: Activations,
    rows: np.ndarray | None = None,
    batch_size: int = 4096,
    device: torch.device | None = None,
    compute_dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Reconstruction metrics of sae (inference mode) on activations[rows] (default: all rows).

    mse: per element, raw units. mse_normalised: ||x' - x_hat'||^2 per token in normalised units (the
    training loss's scale). fvu = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (scale-free, so the same
    in both units); fve = 1 - fvu. l0: mean active latents per token. dead_fraction_holdout: latents
    that never fired on these rows. Matryoshka SAEs add fve_prefix_<width> per prefix.
    """
    rows = np.arange(len(activations)) if rows is None else np.asarray(rows)
    device = device if device is not None else sae.W_dec.device
    was_training = sae.training
    sae.eval()
    widths = sae.cfg.widths if isinstance(sae, MatryoshkaSAE) else ()
    sums = {"sq_err": 0.0, "sq_norm": 0.0, "active": 0.0, **{f"prefix_{w}": 0.0 for w in widths}}
    total = torch.zeros(sae.d_in, dtype=torch.float64, device=device)
    fired = torch.zeros(sae.d_sae, dtype=torch.bool, device=device)
    mean = normalisation.mean.to(device)
    try:
        for start in range(0, len(rows), batch_size):
            x = (_read(activations, rows[start : start + batch_size]).to(device) - mean) * normalisation.scale
            with torch.autocast(device.type, dtype=compute_dtype, enabled=compute_dtype != torch.float32):
                if isinstance(sae, TopKSAE):  # CSR codes: no dense [batch, d_sae] activations to hold
                    codes = sae.encode_sparse(x)
                    x_hat = (sae.decode_codes(codes) + sae.b_dec).float()
                    active_count, active_latents = (codes.values > 0).sum().item(), codes.active_latents()
                else:
                    z = sae.encode(x)
                    x_hat = sae.decode(z).float()
                    active_count, active_latents = (z > 0).sum().item(), (z > 0).any(dim=0)
                prefixes = sae.prefix_reconstructions(x) if widths else {}
            sums["sq_err"] += (x_hat - x).double().pow(2).sum().item()
            sums["sq_norm"] += x.double().pow(2).sum().item()
            total += x.double().sum(dim=0)
            sums["active"] += active_count
            fired |= active_latents
            for width, prefix_hat in prefixes.items():
                sums[f"prefix_{width}"] += (prefix_hat.float() - x).double().pow(2).sum().item()
    finally:
        sae.train(was_training)
    n = len(rows)
    variance = sums["sq_norm"] - (total.pow(2).sum().item() / n)
    fvu = sums["sq_err"] / variance if variance > 0 else math.nan
    metrics = {
        "mse": sums["sq_err"] / (n * sae.d_in) / normalisation.scale**2,
        "mse_normalised": sums["sq_err"] / n,
        "fvu": fvu,
        "fve": 1.0 - fvu,
        "l0": sums["active"] / n,
        "dead_fraction_holdout": 1.0 - fired.float().mean().item(),
        "holdout_tokens": float(n),
    }
    for width in widths:
        metrics[f"fve_prefix_{width}"] = 1.0 - sums[f"prefix_{width}"] / variance if variance > 0 else math.nan
    return metrics


# Checkpoints: directory/step-XXXXXXXXXX/{state.safetensors, optimizer.pt, state.json}, written to a
# temporary sibling and renamed into place, so a kill leaves either the old or the new one whole.


def _write_checkpoint(directory: Path, state: _State, fingerprint: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{state.step:010d}"
    temporary = directory / f".tmp-step-{state.step:010d}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    tensors = {f"sae.{name}": value.detach().cpu().contiguous() for name, value in state.sae.state_dict().items()}
    tensors["tokens_since_fired"] = state.dead.tokens_since_fired.cpu()
    tensors["normalisation_mean"] = state.normalisation.mean
    tensors["torch_rng_state"] = torch.get_rng_state()
    save_file(tensors, temporary / "state.safetensors")
    # Adam's state is tensors, numbers and tuples only, so `torch.load(weights_only=True)` reads it
    # back without unpickling arbitrary objects.
    torch.save(state.optimizer.state_dict(), temporary / "optimizer.pt")
    meta = {
        "format": _CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "step": state.step,
        "tokens_seen": state.dead.tokens_seen,
        "normalisation_scale": state.normalisation.scale,
        "history": state.history,
        "device_seconds": state.device_seconds,
    }
    (temporary / "state.json").write_text(json.dumps(meta))
    for path in temporary.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    if final.exists():  # the same step written again by a rerun: the content is the same
        shutil.rmtree(temporary)
    else:
        os.replace(temporary, final)
    for old in directory.iterdir():
        match = _CHECKPOINT.match(old.name)
        if (match and int(match.group(1)) < state.step) or old.name.startswith(".tmp-step-"):
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint in directory, or None."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    steps = [
        (int(m.group(1)), p)
        for p in directory.iterdir()
        if (m := _CHECKPOINT.match(p.name)) and (p / "state.json").is_file()
    ]
    return max(steps)[1] if steps else None


def _resume(
    directory: Path, fingerprint: dict[str, Any], sae_cfg: SAEConfig, cfg: TrainingConfig, device: torch.device
) -> _State | None:
    path = latest_checkpoint(directory)
    if path is None:
        return None
    meta = json.loads((path / "state.json").read_text())
    _check_fingerprint(meta.get("fingerprint", {}), fingerprint, path)
    if int(meta["step"]) > cfg.steps:
        raise CheckpointMismatchError(f"checkpoint {path} is at step {meta['step']}, beyond steps={cfg.steps}")
    tensors = load_file(path / "state.safetensors")
    sae = build_sae(config_from_dict(meta["fingerprint"]["sae"]), seed=cfg.seed)
    sae.load_state_dict({name[4:]: value for name, value in tensors.items() if name.startswith("sae.")})
    sae.to(device)
    optimizer = _optimizer(sae, cfg, device)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    torch.set_rng_state(tensors["torch_rng_state"])
    dead = _DeadLatents(sae_cfg.d_sae, cfg.dead_window_tokens, device)
    dead.tokens_since_fired.copy_(tensors["tokens_since_fired"])
    dead.tokens_seen = int(meta["tokens_seen"])
    normalisation = Normalisation(mean=tensors["normalisation_mean"], scale=float(meta["normalisation_scale"]))
    return _State(
        sae=sae,
        optimizer=optimizer,
        normalisation=normalisation,
        dead=dead,
        step=int(meta["step"]),
        history=list(meta["history"]),
        device_seconds=float(meta["device_seconds"]),
    )


def _check_fingerprint(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    differences = []
    if saved.get("sae") != current["sae"]:
        differences.append(f"SAE config {saved.get('sae')} != {current['sae']}")
    for key in ("n_rows", "d_in"):
        if saved.get(key) != current[key]:
            differences.append(f"{key} {saved.get(key)} != {current[key]}")
    saved_training = saved.get("training", {})
    for name, value in current["training"].items():
        if name not in TrainingConfig.RESUMABLE_CHANGES and saved_training.get(name) != value:
            differences.append(f"training.{name} {saved_training.get(name)!r} != {value!r}")
    if differences:
        raise CheckpointMismatchError(f"checkpoint {path} belongs to another run: " + "; ".join(differences))
