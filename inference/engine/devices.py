"""Device and precision choice, made once per job and passed down to the engine."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.profiler import record_function

_CUDA = "cuda"
_fast_matmul_enabled = False
_phase_timer: PhaseTimer | None = None


class DeviceError(ValueError):
    """The requested device is unknown or not available on this machine."""


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """Turn a user's device string into a usable `torch.device`.

    `None` and `"auto"` pick the first CUDA device when there is one, else the CPU. Anything else
    must name a device this machine has (`"cpu"`, `"cuda"`, `"cuda:1"`, `"mps"`); otherwise a
    `DeviceError` says what was asked and what exists.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name.strip().lower() == "auto":
        device = torch.device(_CUDA, 0) if torch.cuda.is_available() else torch.device("cpu")
    else:
        try:
            device = torch.device(name.strip().lower())
        except (RuntimeError, ValueError) as error:
            raise DeviceError(f"unknown device {name!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from error
        _check_available(device, name)
    if device.type == _CUDA:
        _enable_fast_matmul()
    return device


def _check_available(device: torch.device, name: str) -> None:
    if device.type == "cpu":
        return
    if device.type == _CUDA:
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} requested but CUDA is not available on this machine")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        return
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"device {name!r} requested but MPS is not available on this machine")
        return
    raise DeviceError(f"unsupported device {name!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")


def _enable_fast_matmul() -> None:
    # TF32 matmuls keep fp32 master weights but use tensor cores: ~8x faster on Ampere and later,
    # and the SAE loss is far less precise than TF32's 10-bit mantissa anyway.
    global _fast_matmul_enabled
    if not _fast_matmul_enabled:
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
        _fast_matmul_enabled = True


def is_cuda(device: torch.device) -> bool:
    return device.type == _CUDA


def autocast_dtype(device: torch.device) -> torch.dtype:
    """The compute dtype for autocast: bf16 on CUDA (tensor cores), fp32 on CPU (bf16 is slower there)."""
    return torch.bfloat16 if is_cuda(device) else torch.float32


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock timings measure the device's work."""
    if is_cuda(device):
        torch.cuda.synchronize(device)


def supports_fused_adam(device: torch.device) -> bool:
    return is_cuda(device)


def describe(device: torch.device) -> str:
    """A human name for the device, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu (16 threads)'."""
    if is_cuda(device):
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark a named part of a training step ("encode", "select", "decode", ...).

    Always a profiler range; also timed, between device synchronisations, while a `PhaseTimer` is
    active (bench/sae_train.py). Outside a timer the cost is one profiler-range check.
    """
    with record_function(f"sae.{name}"):
        if _phase_timer is None:
            yield
        else:
            with _phase_timer.measure(name):
                yield


class PhaseTimer:
    """Wall seconds per `phase` name while active (`with PhaseTimer(device) as timer:`); not nestable."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] += time.perf_counter() - start

    def __enter__(self) -> PhaseTimer:
        global _phase_timer
        if _phase_timer is not None:
            raise RuntimeError("a PhaseTimer is already active")
        _phase_timer = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _phase_timer
        _phase_timer = None
