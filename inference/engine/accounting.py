"""Compute accounting: device time, energy (NVML, RAPL or an estimate), CO₂ and cost; training projections.

Pure: reads counters from NVML (when `pynvml` is installed and a GPU is present) and from the Linux
powercap tree, and does arithmetic. RAPL counts the whole CPU package, not one process: on a shared
machine it over-attributes, which the `method` field makes visible.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

POWERCAP_ROOT = Path("/sys/class/powercap")
JOULES_PER_KWH = 3.6e6


METHOD_LABELS = {"nvml": "measured (NVML)", "rapl": "measured (RAPL)", "estimated": "estimated"}


def method_label(method: str | None) -> str:
    """How a reader sees an energy method: 'measured (NVML)', 'measured (RAPL)' or 'estimated'."""
    return METHOD_LABELS.get(method or "estimated", method or "estimated")


def is_gpu(device: str) -> bool:
    """Whether a job's device is priced and estimated as a GPU (CUDA); CPU and MPS count as CPU time."""
    return (device or "cpu").startswith("cuda")


@dataclass(frozen=True)
class Footprint:
    """What one piece of work cost. `method`: nvml | rapl | estimated (from a configured power draw)."""

    device_seconds: float
    energy_kwh: float
    method: str
    co2_kg: float
    cost: float

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)

    @property
    def method_label(self) -> str:
        return method_label(self.method)


def footprint(
    *,
    device_seconds: float,
    energy_joules: float | None,
    method: str,
    watts: float,
    carbon_intensity_kg_per_kwh: float,
    device_hour_price: float,
) -> Footprint:
    """Energy measured (`energy_joules`) or, when None, `watts` × seconds, marked `estimated`."""
    if device_seconds < 0 or watts < 0 or carbon_intensity_kg_per_kwh < 0 or device_hour_price < 0:
        raise ValueError("seconds, watts, carbon intensity and price must be ≥ 0")
    if energy_joules is None or not math.isfinite(energy_joules) or energy_joules < 0:
        energy_joules, method = watts * device_seconds, "estimated"
    kwh = energy_joules / JOULES_PER_KWH
    return Footprint(
        device_seconds=device_seconds,
        energy_kwh=kwh,
        method=method,
        co2_kg=kwh * carbon_intensity_kg_per_kwh,
        cost=device_seconds / 3600.0 * device_hour_price,
    )


def sum_footprints(footprints: list[Footprint]) -> Footprint:
    """Totals; the method is the weakest one among the parts (any estimate makes the total estimated)."""
    methods = {f.method for f in footprints}
    method = "estimated" if "estimated" in methods or not methods else ("rapl" if "rapl" in methods else "nvml")
    return Footprint(
        device_seconds=sum(f.device_seconds for f in footprints),
        energy_kwh=sum(f.energy_kwh for f in footprints),
        method=method,
        co2_kg=sum(f.co2_kg for f in footprints),
        cost=sum(f.cost for f in footprints),
    )


# --- counters ---------------------------------------------------------------------------------------------


def rapl_read(root: Path = POWERCAP_ROOT) -> dict[str, tuple[int, int]] | None:
    """{package zone: (energy µJ, wrap range µJ)} for every readable CPU package zone, or None."""
    zones: dict[str, tuple[int, int]] = {}
    if not root.is_dir():
        return None
    for zone in sorted(root.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:  # sub-zones (core, uncore, dram) are inside their package
            continue
        try:
            energy = int((zone / "energy_uj").read_text().strip())
            wrap = int((zone / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError):
            continue
        zones[zone.name] = (energy, wrap)
    return zones or None


def rapl_joules_between(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> float:
    """Energy in joules between two `rapl_read`s, counting one wrap-around of each counter."""
    total = 0
    for name, (energy, wrap) in after.items():
        if name not in before:
            continue
        delta = energy - before[name][0]
        total += delta if delta >= 0 else delta + wrap
    return total / 1e6


def nvml_read() -> dict[int, float] | None:
    """{GPU index: total energy in joules since the driver loaded} (Volta and newer), or None."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no GPU: no measurement
        return None
    try:
        readings = {}
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                readings[index] = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0
            except Exception:  # noqa: BLE001 - an older GPU without the counter
                continue
        return readings or None
    finally:
        pynvml.nvmlShutdown()


@dataclass
class EnergyMeter:
    """Counters at `start()`; `stop(device=...)` gives seconds and measured joules for that device."""

    powercap_root: Path = POWERCAP_ROOT
    started: float = 0.0
    rapl: dict[str, tuple[int, int]] | None = None
    nvml: dict[int, float] | None = None
    _read_nvml: bool = field(default=True, repr=False)

    def start(self, *, gpu: bool = True) -> EnergyMeter:
        self._read_nvml = gpu
        self.started = time.perf_counter()
        self.rapl = rapl_read(self.powercap_root)
        self.nvml = nvml_read() if gpu else None
        return self

    def stop(self, *, device: str) -> tuple[float, float | None, str]:
        """(seconds, joules or None, method) for `device` ("cpu", "cuda", "cuda:1", "mps")."""
        seconds = time.perf_counter() - self.started
        if device.startswith("cuda"):
            index = int(device.split(":")[1]) if ":" in device else 0
            after = nvml_read() if self._read_nvml else None
            if self.nvml and after and index in self.nvml and index in after:
                return seconds, after[index] - self.nvml[index], "nvml"
            return seconds, None, "estimated"
        if device == "cpu" and self.rapl:
            after = rapl_read(self.powercap_root)
            if after:
                return seconds, rapl_joules_between(self.rapl, after), "rapl"
        return seconds, None, "estimated"


# --- projections ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    peak_flops: float  # dense bf16 tensor-core FLOP/s
    memory_bytes: float
    bandwidth: float  # HBM bytes/s
    watts: float  # board power under load


DEVICES = {
    "a100": DeviceSpec(
        name="NVIDIA A100 80GB SXM", peak_flops=312e12, memory_bytes=80e9, bandwidth=2.04e12, watts=400.0
    ),
    "h100": DeviceSpec(
        name="NVIDIA H100 80GB SXM", peak_flops=989e12, memory_bytes=80e9, bandwidth=3.35e12, watts=700.0
    ),
}


@dataclass(frozen=True)
class TrainingEstimate:
    device: str
    flops: float
    compute_seconds: float
    memory_seconds: float
    gpu_hours: float
    min_gpus: int
    state_bytes: float
    energy_kwh: float
    co2_kg: float
    cost: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def estimate_training(
    *,
    tokens: float,
    d_in: int,
    width: int,
    k: int | None,
    device: str,
    batch_size: int = 4096,
    utilisation: float = 0.4,
    host_model_params: float = 0.0,
    pue: float = 1.1,
    carbon_intensity_kg_per_kwh: float = 0.4,
    device_hour_price: float = 3.0,
) -> TrainingEstimate:
    """Project an SAE training run from a FLOP and memory model.

    FLOPs per token: encoder forward 2·d_in·W and backward 4·d_in·W (dense); decoder forward and backward
    6·k·d_in with a sparse top-k decoder (6·W·d_in when dense, k None); plus 2·P for the host model's
    forward pass when the activations are produced on the fly (P = `host_model_params`). Compute time at
    `utilisation` of the device's peak; memory time from streaming the activations (bf16) and reading and
    writing the fp32 weights, gradients and two Adam moments once per step; the slower of the two counts.
    Optimiser state larger than 90 % of one device's memory needs several devices (`min_gpus`).
    """
    if tokens <= 0 or d_in < 1 or width < 1 or batch_size < 1 or not 0 < utilisation <= 1 or pue < 1:
        raise ValueError("tokens, d_in, width and batch size must be positive, utilisation in (0, 1], PUE ≥ 1")
    if k is not None and not 1 <= k <= width:
        raise ValueError("k must be between 1 and the width")
    if device not in DEVICES:
        raise ValueError(f"unknown device '{device}'; choose one of {', '.join(DEVICES)}")
    spec = DEVICES[device]
    decoder = 6.0 * (k if k is not None else width) * d_in
    flops = tokens * (6.0 * d_in * width + decoder + 2.0 * host_model_params)
    compute_seconds = flops / (spec.peak_flops * utilisation)
    state_bytes = 2.0 * d_in * width * 4 * 4  # W_enc and W_dec; fp32 weights, gradients, Adam m and v
    steps = tokens / batch_size
    memory_seconds = (steps * 2.0 * state_bytes + tokens * d_in * 2.0) / spec.bandwidth
    seconds = max(compute_seconds, memory_seconds)
    gpu_hours = seconds / 3600.0
    energy_kwh = gpu_hours * spec.watts / 1000.0 * pue
    return TrainingEstimate(
        device=spec.name,
        flops=flops,
        compute_seconds=compute_seconds,
        memory_seconds=memory_seconds,
        gpu_hours=gpu_hours,
        min_gpus=max(1, math.ceil(state_bytes / (0.9 * spec.memory_bytes))),
        state_bytes=state_bytes,
        energy_kwh=energy_kwh,
        co2_kg=energy_kwh * carbon_intensity_kg_per_kwh,
        cost=gpu_hours * device_hour_price,
    )
