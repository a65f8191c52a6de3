"""The steering job (issue 13): baseline and steered continuations of a prompt through an SAE on a causal
host, with the per-position KL, run on a worker so that the web process never loads torch.

Which latents to steer, and with what weight, is decided before the job is created (config/steering.py
reads annotation's consensus for a concept; inference never does): the job's parameters carry the latent
indices and weights, the clamp or scale, the prompt and the decoding. `manage.py steer` runs the same
`steering_compute` in its own process.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

from features.models import SAE, HostModel

from .models import Job
from .progress import JobReporter, Progress

RESEARCH_ONLY = "Research tool, not for patient care."
MAX_NEW_TOKENS = 256  # the engine's ceiling (the page and the API stop at 128)


def steering_parameters(
    *,
    sae: SAE,
    latents: dict[int, float],
    prompt: str,
    clamp: float | None,
    scale: float | None,
    max_new_tokens: int,
    seed: int | None,
    concept: str | None = None,
) -> dict[str, Any]:
    """The job's parameters, checked without torch (the engine checks them again when it runs)."""
    host = sae.hook_point.host_model
    if host.kind != HostModel.Kind.CAUSAL:
        raise ValueError(f"{host.name} is an encoder: steering needs a causal host with a next-token head")
    if not prompt.strip():
        raise ValueError("the prompt is empty")
    if not latents:
        raise ValueError("an intervention needs at least one latent")
    if (clamp is None) == (scale is None):
        raise ValueError("give exactly one of clamp and scale")
    if any(value is not None and not math.isfinite(value) for value in (clamp, scale)):
        raise ValueError("clamp and scale must be finite numbers")
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ValueError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS}")
    for index, weight in latents.items():
        if not 0 <= index < sae.d_sae:
            raise ValueError(f"latent {index} is out of range: the SAE has {sae.d_sae} latents")
        if not 0 <= weight <= 1:
            raise ValueError(f"latent weights must be in [0, 1], got {weight!r} for latent {index}")
    return {
        "sae_id": sae.pk,
        "latents": [{"index": int(index), "weight": float(weight)} for index, weight in sorted(latents.items())],
        "concept": concept,
        "clamp": clamp,
        "scale": scale,
        "prompt": prompt,
        "max_new_tokens": int(max_new_tokens),
        "seed": seed,
    }


def steering_compute(*, parameters: dict[str, Any], progress: Progress | None = None) -> dict[str, Any]:
    """Run a steering request here: load (or reuse) the host model and the SAE, generate both
    continuations and measure the KL. Raises ValueError for a request the engine refuses."""
    from inference.engine.host_models import model_id
    from inference.engine.steering import GenerationConfig, Intervention, steer
    from inference.runtime import device as resolve
    from inference.runtime import host_model_loaded, sae_loaded

    report = progress or (lambda fraction, message: None)
    sae = SAE.objects.select_related("hook_point__host_model").get(pk=parameters["sae_id"])
    host = sae.hook_point.host_model
    latents = {int(row["index"]): float(row["weight"]) for row in parameters["latents"]}
    intervention = Intervention(latents=latents, clamp=parameters.get("clamp"), scale=parameters.get("scale"))
    generation = GenerationConfig(max_new_tokens=parameters["max_new_tokens"], seed=parameters.get("seed"))
    started = time.perf_counter()
    device = resolve()
    report(0.05, f"loading {host.name}")
    handle = host_model_loaded(host_model=host, device_name=str(device))
    model = sae_loaded(sae=sae, device_name=str(device))
    report(0.3, f"generating {generation.max_new_tokens} tokens with and without the intervention")
    result = steer(
        handle=handle,
        hook_name=sae.hook_point.name,
        encode=model.encode,
        decode=model.decode,
        intervention=intervention,
        prompt=parameters["prompt"],
        generation=generation,
    )
    seed = parameters.get("seed")
    return {
        "notice": RESEARCH_ONLY,
        "sae": sae.pk,
        "hook_name": sae.hook_point.name,
        "host_model": model_id(host.source),  # the public id, never a local checkpoint path
        "latents": [{"index": index, "weight": weight} for index, weight in sorted(latents.items())],
        "concept": parameters.get("concept"),
        "clamp": parameters.get("clamp"),
        "scale": parameters.get("scale"),
        "seed": seed,
        "decoding": "greedy" if seed is None else "sampled (temperature 1, same seed for both runs)",
        "prompt": parameters["prompt"],
        **asdict(result),
        "seconds": round(time.perf_counter() - started, 3),
        "device": str(device),
    }


def steering_work(job: Job, progress: Progress) -> dict[str, Any]:
    result = steering_compute(parameters=job.parameters, progress=progress)
    if isinstance(progress, JobReporter):
        progress.record(device=result["device"])
    progress(1.0, "generated")
    return result
