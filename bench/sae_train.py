"""SAE training throughput per architecture, sparse kernels against the dense reference.

Prints tokens/s, achieved TFLOP/s and its share of the device's matmul peak (measured here with a
large matmul: bf16 on CUDA, fp32 on CPU), and where a step's time goes: encode matmul, latent
selection (top-k / ReLU / JumpReLU), decode (+ loss), backward, optimiser.

    python bench/sae_train.py                  # CPU defaults: d_in 384, d_sae 6144, k 32, batch 1024
    python bench/sae_train.py --device cuda    # GPU defaults: d_in 768, d_sae 24576, k 32, batch 4096

Needs only torch and `inference.engine` (no Django), so it runs on a bare GPU box.
FLOPs are counted per implementation, for the work it actually does (B tokens, D = d_in, S = d_sae):
dense reference 12 B D S (encode, decode, and the four backward products); sparse top-k
2 B D S + 8 B k D (only the encoder's forward matmul is dense). "x ref" compares step times.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from inference.engine.devices import (  # noqa: E402
    PhaseTimer,
    autocast_dtype,
    describe,
    is_cuda,
    phase,
    resolve_device,
    supports_fused_adam,
    synchronize,
)
from inference.engine.kernels import batch_topk_codes, topk_codes  # noqa: E402
from inference.engine.saes import (  # noqa: E402
    BatchTopKConfig,
    JumpReLUConfig,
    MatryoshkaConfig,
    ReLUConfig,
    SAEConfig,
    TopKConfig,
    build_sae,
)

PHASES = ("encode", "select", "decode", "backward", "optimizer")


def measure_peak(device: torch.device) -> float:
    """Matmul peak in TFLOP/s: bf16 on CUDA, fp32 on CPU."""
    n, dtype, repeats = (8192, torch.bfloat16, 20) if is_cuda(device) else (2048, torch.float32, 8)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for _ in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times[2:]) / 1e12


def flops_per_step(cfg: SAEConfig, batch: int) -> float:
    d, s = cfg.d_in, cfg.d_sae
    dense_decode = 2 * batch * d * s
    if isinstance(cfg, MatryoshkaConfig):
        if cfg.sparse_kernels:
            # dense encoder matmul; per prefix a sparse decode and its two backward products; encoder grads
            return 2 * batch * d * s + 2 * batch * cfg.k * d * (3 * len(cfg.widths) + 1)
        # encode forward + its two backward products, and per prefix a decode and its two backward products
        return 3 * dense_decode + 3 * len(cfg.widths) * dense_decode
    if isinstance(cfg, TopKConfig) and cfg.sparse_kernels:
        return 2 * batch * d * s + 8 * batch * cfg.k * d
    return 6 * dense_decode


def make_step(sae, optimizer, device: torch.device, dtype: torch.dtype):
    use_autocast = dtype != torch.float32

    def step(x: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=use_autocast):
            out = sae(x)
        optimizer.zero_grad(set_to_none=True)
        with phase("backward"):
            out.loss.backward()
        with phase("optimizer"):
            sae.constrain_decoder_gradient()
            optimizer.step()
            sae.after_step()

    return step


def bench_one(
    cfg: SAEConfig, *, batch: int, steps: int, warmup: int, device: torch.device, dtype: torch.dtype, phase_steps: int
) -> dict[str, float]:
    sae = build_sae(cfg, seed=0, device=device).train()
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-4, fused=supports_fused_adam(device) or None)
    batches = [torch.randn(batch, cfg.d_in, device=device) for _ in range(4)]
    step = make_step(sae, optimizer, device, dtype)
    for i in range(warmup):
        step(batches[i % len(batches)])
    times = []
    for i in range(steps):
        synchronize(device)
        start = time.perf_counter()
        step(batches[i % len(batches)])
        synchronize(device)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    # Phase shares come from separate steps with a device synchronisation around every phase
    # (`inference.engine.devices.phase`), so that each kernel is charged to the phase that queued it.
    with PhaseTimer(device) as timer:
        for i in range(phase_steps):
            step(batches[i % len(batches)])
    spent = {name: timer.seconds.get(name, 0.0) for name in PHASES}
    total = sum(spent.values()) or 1.0
    flops = flops_per_step(cfg, batch)
    return {
        "seconds": seconds,
        "tokens_per_s": batch / seconds,
        "tflops": flops / seconds / 1e12,
        **{name: spent[name] / total for name in PHASES},
    }


def bench_selection(device: torch.device, batch: int, d_sae: int, k: int, dtype: torch.dtype) -> dict[str, float]:
    """Milliseconds of torch.topk against the selections the SAEs use, per token row and per batch."""
    pre = torch.randn(batch, d_sae, device=device, dtype=dtype)
    acts = torch.relu(pre)

    def timed(fn) -> float:
        for _ in range(2):
            fn()
        times = []
        for _ in range(7):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
        return 1e3 * statistics.median(times)

    return {
        "row torch.topk(sorted)": timed(lambda: torch.topk(pre, k, dim=1)),
        "row topk_codes": timed(lambda: topk_codes(pre, k)),
        "batch torch.topk": timed(lambda: torch.topk(acts.reshape(-1), batch * k, sorted=False)),
        "batch batch_topk_codes": timed(lambda: batch_topk_codes(acts, batch * k)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--d-in", type=int)
    parser.add_argument("--d-sae", type=int)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int, help="timed steps per row (median taken)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--phase-steps", type=int, default=2, help="steps timed phase by phase for the shares")
    parser.add_argument("--architectures", default="relu,jumprelu,topk,batchtopk,matryoshka")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = resolve_device(args.device)
    gpu = is_cuda(device)
    d_in = args.d_in or (768 if gpu else 384)
    d_sae = args.d_sae or (24576 if gpu else 6144)
    batch = args.batch_size or (4096 if gpu else 1024)
    steps = args.steps or (20 if gpu else 5)
    dtype = autocast_dtype(device)
    peak_before = measure_peak(device)
    print(f"device: {describe(device)}; compute dtype {str(dtype).removeprefix('torch.')}")
    print(
        f"d_in {d_in}, d_sae {d_sae}, k {args.k}, batch {batch} tokens, median of {steps} steps; "
        f"torch {torch.__version__}\n"
    )

    configs: list[tuple[str, str, SAEConfig]] = []
    for name in args.architectures.split(","):
        if name == "relu":
            configs.append(("relu", "dense", ReLUConfig(d_in=d_in, d_sae=d_sae)))
        elif name == "jumprelu":
            configs.append(("jumprelu", "dense", JumpReLUConfig(d_in=d_in, d_sae=d_sae)))
        else:
            config_class = {"topk": TopKConfig, "batchtopk": BatchTopKConfig, "matryoshka": MatryoshkaConfig}[name]
            fast = config_class(d_in=d_in, d_sae=d_sae, k=args.k)
            configs.append((name, "sparse", fast))
            configs.append((name, "reference", dataclasses.replace(fast, sparse_kernels=False)))

    header = (
        f"{'architecture':<12} {'kernels':<9} {'ms/step':>8} {'tokens/s':>10} {'TFLOP/s':>8} {'% peak':>7} "
        f"{'x ref':>6} | " + " ".join(f"{name.removesuffix('imizer'):>8}" for name in PHASES)
    )
    # A discarded first run: the allocator and thread pool settle during it, and the first
    # configuration measured would otherwise look several times slower than it is.
    bench_one(configs[0][2], batch=batch, steps=1, warmup=args.warmup, device=device, dtype=dtype, phase_steps=0)
    reference_seconds: dict[str, float] = {}
    rows = []
    for name, kernels, cfg in configs:
        result = bench_one(
            cfg, batch=batch, steps=steps, warmup=args.warmup, device=device, dtype=dtype, phase_steps=args.phase_steps
        )
        rows.append((name, kernels, result))
        if kernels != "sparse":
            reference_seconds[name] = result["seconds"]
    # The peak is measured before and after the runs and the higher kept: on a shared machine a
    # single measurement can land in someone else's busy second.
    peak = max(peak_before, measure_peak(device))
    print(f"measured matmul peak {peak:.3f} TFLOP/s ({'bf16' if gpu else 'fp32'}); % peak is of that\n")
    print(header)
    print("-" * len(header))
    for name, kernels, result in rows:
        speedup = reference_seconds.get(name, result["seconds"]) / result["seconds"]
        shares = " ".join(f"{100 * result[phase_name]:7.1f}%" for phase_name in PHASES)
        print(
            f"{name:<12} {kernels:<9} {1e3 * result['seconds']:8.1f} {result['tokens_per_s']:10.0f} "
            f"{result['tflops']:8.3f} {100 * result['tflops'] / peak:6.1f}% {speedup:5.2f}x | {shares}"
        )

    selection = bench_selection(device, batch, d_sae, args.k, dtype)
    print(
        f"\nselection of k={args.k} of {d_sae} per token / {batch * args.k} of the batch (ms): "
        + ", ".join(f"{name} {ms:.2f}" for name, ms in selection.items())
    )


if __name__ == "__main__":
    main()
