"""Steering a causal host by a latent or by a labelled concept: the glue between annotation's
consensus (which latents carry a concept, how surely) and the inference engine's `steer`.

It lives in config/ because it reads both annotation and inference, which never import each other.
A research tool, not for patient care: researchers and seniors only (and admins), every run audited.
Torch and the models load inside `steering_run` only, so importing this module stays light.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from accounts.audit import audit_record
from accounts.models import Role
from accounts.permissions import has_role, saes_visible_to
from annotation.models import Consensus, Round
from features.models import SAE, HostModel

STEERERS = frozenset({Role.RESEARCHER, Role.SENIOR, Role.ADMIN})
RESEARCH_ONLY = "Research tool, not for patient care."
_HANDLES: dict[tuple[str, str], Any] = {}  # (source, revision) -> a loaded host model, kept for the next run


class SteeringError(ValueError):
    """A steering request that cannot run; the message says why."""


def can_steer(user) -> bool:
    return has_role(user, STEERERS)


def steerable_saes(*, user):
    """SAEs on causal hosts that this user may steer with."""
    if not can_steer(user):
        return SAE.objects.none()
    return (
        saes_visible_to(user, SAE.objects.filter(hook_point__host_model__kind=HostModel.Kind.CAUSAL))
        .select_related("hook_point__host_model")
        .order_by("name")
    )


def steering_latents(
    *, sae: SAE, latent_index: int | None = None, concept_code: str | None = None, viewer=None
) -> dict[int, float]:
    """latent index -> weight: one latent at weight 1, or every latent whose SAE-wide consensus
    label (the platform method's MAP) is concept_code, weighted by that label's posterior probability.

    A senior (a rater) steers by concept only through latents whose rounds are all revealed: the consensus
    of a closed, unrevealed or open round is blind to raters, and which latents carry a concept would leak it."""
    if (latent_index is None) == (concept_code is None):
        raise SteeringError("give exactly one of a latent index and a concept code")
    if latent_index is not None:
        if not 0 <= latent_index < sae.d_sae:
            raise SteeringError(f"latent {latent_index} is out of range: the SAE has {sae.d_sae} latents")
        return {latent_index: 1.0}
    rows = Consensus.objects.of_sae(sae.pk).platform().filter(latent__sae=sae, map_concept=concept_code)
    if viewer is not None and has_role(viewer, {Role.SENIOR}):
        rows = rows.exclude(latent__rounds__status__in=[Round.Status.OPEN, Round.Status.CLOSED])
    rows = rows.values_list("latent__index", "posterior")
    latents = {index: float(posterior.get(concept_code, 0.0)) for index, posterior in rows}
    latents = {index: min(max(weight, 0.0), 1.0) for index, weight in latents.items() if weight > 0}
    if not latents:
        raise SteeringError(f"no latent of SAE {sae.pk} has the consensus label {concept_code!r}")
    return latents


def steering_run(
    *,
    sae: SAE,
    by,
    prompt: str,
    latent_index: int | None = None,
    concept_code: str | None = None,
    clamp: float | None = None,
    scale: float | None = None,
    max_new_tokens: int = 24,
    seed: int | None = None,
) -> dict[str, Any]:
    """Baseline and steered continuations of prompt, side by side, with the per-position KL; audited.
    by None is the command line (an operator with shell access), audited without an actor."""
    if by is not None and not can_steer(by):
        raise PermissionError("steering is for researchers and seniors")
    host = sae.hook_point.host_model
    if host.kind != HostModel.Kind.CAUSAL:
        raise SteeringError(f"{host.name} is an encoder: steering needs a causal host with a next-token head")
    if not prompt.strip():
        raise SteeringError("the prompt is empty")
    latents = steering_latents(sae=sae, latent_index=latent_index, concept_code=concept_code, viewer=by)

    from inference.engine.formats import load_sae
    from inference.engine.steering import GenerationConfig, Intervention, steer

    try:
        intervention = Intervention(latents=latents, clamp=clamp, scale=scale)
        generation = GenerationConfig(max_new_tokens=max_new_tokens, seed=seed)
    except ValueError as error:
        raise SteeringError(str(error)) from None
    started = time.perf_counter()
    handle = _host_handle(host)
    model = load_sae(sae.artifact_uri).normalised().eval()
    try:
        result = steer(
            handle=handle,
            hook_name=sae.hook_point.name,
            encode=model.encode,
            decode=model.decode,
            intervention=intervention,
            prompt=prompt,
            generation=generation,
        )
    except ValueError as error:
        raise SteeringError(str(error)) from None
    output = {
        "notice": RESEARCH_ONLY,
        "sae": sae.pk,
        "hook_name": sae.hook_point.name,
        "host_model": host.name,
        "latents": [{"index": index, "weight": weight} for index, weight in sorted(latents.items())],
        "concept": concept_code,
        "clamp": clamp,
        "scale": scale,
        "seed": seed,
        "decoding": "greedy" if seed is None else "sampled (temperature 1, same seed for both runs)",
        "prompt": prompt,
        **asdict(result),
        "seconds": round(time.perf_counter() - started, 3),
    }
    audit_record(
        actor=by,
        action="steering.run",
        obj=sae,
        payload={
            **{key: output[key] for key in ("latents", "concept", "clamp", "scale", "seed", "prompt")},
            "via": "web or API" if by is not None else "command line",
        },
    )
    return output


def _host_handle(host: HostModel):
    key = (host.source, host.revision or "")
    if key not in _HANDLES:
        from inference.engine.host_models import load_host_model

        _HANDLES.clear()  # one host model in memory at a time
        _HANDLES[key] = load_host_model(
            source=host.source, revision=host.revision or None, device="cpu", kind=host.kind
        )
    return _HANDLES[key]
