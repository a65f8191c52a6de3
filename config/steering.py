"""Steering a causal host by a latent or by a labelled concept: the glue between annotation's
consensus (which latents carry a concept, how surely) and the inference engine's `steer`.

It lives in config/ because it reads both annotation and inference, which never import each other.
A research tool, not for patient care: researchers and seniors only (and admins), every run audited.
The page and the API queue a `steer` job (`steering_launch`) that a worker runs
(`inference.steering.steering_work`): the web process never loads torch. `manage.py steer` runs the
same computation in its own process (`steering_run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import Role
from accounts.permissions import has_role, jobs_visible_to, saes_visible_to
from annotation.access import latents_blind_to
from annotation.models import Consensus
from features.models import SAE, HostModel
from inference.models import Job
from inference.services import steering_request
from inference.steering import RESEARCH_ONLY, steering_compute, steering_parameters

STEERERS = frozenset({Role.RESEARCHER, Role.SENIOR, Role.ADMIN})
__all__ = [
    "RESEARCH_ONLY",
    "SteeringError",
    "SteeringRequest",
    "can_steer",
    "steerable_saes",
    "steering_launch",
    "steering_run",
]


class SteeringError(ValueError):
    """A steering request that cannot run; the message says why."""


@dataclass(frozen=True)
class SteeringRequest:
    """What to steer and how: one latent (`latent_index`) or every latent whose consensus label is
    `concept_code`, clamped to `clamp` or scaled by `scale`, on `prompt`; greedy unless `seed` is set."""

    sae: SAE
    prompt: str
    latent_index: int | None = None
    concept_code: str | None = None
    clamp: float | None = None
    scale: float | None = None
    max_new_tokens: int = 24
    seed: int | None = None

    @classmethod
    def from_fields(cls, *, sae: SAE, fields: Mapping[str, Any]) -> SteeringRequest:
        """From the fields the page's form, the API's serializer and `manage.py steer` share: prompt,
        latent, concept, clamp, scale, max_new_tokens, seed (absent or empty: not given)."""
        return cls(
            sae=sae,
            prompt=fields["prompt"],
            latent_index=fields.get("latent"),
            concept_code=fields.get("concept") or None,
            clamp=fields.get("clamp"),
            scale=fields.get("scale"),
            max_new_tokens=fields["max_new_tokens"],
            seed=fields.get("seed"),
        )


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
    if viewer is not None:
        rows = rows.exclude(latent__in=latents_blind_to(viewer))
    rows = rows.values_list("latent__index", "posterior")
    latents = {index: float(posterior.get(concept_code, 0.0)) for index, posterior in rows}
    latents = {index: min(max(weight, 0.0), 1.0) for index, weight in latents.items() if weight > 0}
    if not latents:
        raise SteeringError(f"no latent of SAE {sae.pk} has the consensus label {concept_code!r}")
    return latents


def _parameters(request: SteeringRequest, *, by) -> dict[str, Any]:
    if by is not None and not can_steer(by):
        raise PermissionError("steering is for researchers and seniors")
    sae = request.sae
    host = sae.hook_point.host_model
    if host.kind != HostModel.Kind.CAUSAL:
        raise SteeringError(f"{host.name} is an encoder: steering needs a causal host with a next-token head")
    if not request.prompt.strip():
        raise SteeringError("the prompt is empty")
    latents = steering_latents(sae=sae, latent_index=request.latent_index, concept_code=request.concept_code, viewer=by)
    try:
        return steering_parameters(
            sae=sae,
            latents=latents,
            prompt=request.prompt,
            clamp=request.clamp,
            scale=request.scale,
            max_new_tokens=request.max_new_tokens,
            seed=request.seed,
            concept=request.concept_code,
        )
    except ValueError as error:
        raise SteeringError(str(error)) from None


def _audit(*, by, sae: SAE, parameters: dict[str, Any], via: str, job: Job | None = None) -> None:
    keys = ("latents", "concept", "clamp", "scale", "seed", "prompt")
    payload = {**{key: parameters[key] for key in keys}, "via": via}
    if job is not None:
        payload["job"] = job.pk
    audit_record(actor=by, action="steering.run", obj=sae, payload=payload)


def steering_launch(request: SteeringRequest, *, by, via: str = "web") -> Job:
    """Queue a steering run on a worker (the web process never loads torch); audited. The caller has
    checked that `by` may steer with the SAE (`steerable_saes`). Raises SteeringError for a request that
    cannot run and inference's BrokerUnavailable when the job queue does not answer (nothing is written)."""
    parameters = _parameters(request, by=by)
    with transaction.atomic():
        job = steering_request(parameters=parameters, by=by)
        _audit(by=by, sae=request.sae, parameters=parameters, via=via, job=job)
    return job


def steering_run(request: SteeringRequest, *, by=None) -> dict[str, Any]:
    """Baseline and steered continuations of the prompt, side by side, with the per-position KL, computed
    in this process (`manage.py steer`); audited. by None is the command line (an operator with shell
    access), audited without an actor."""
    parameters = _parameters(request, by=by)
    try:
        output = steering_compute(parameters=parameters)
    except ValueError as error:
        raise SteeringError(str(error)) from None
    _audit(by=by, sae=request.sae, parameters=parameters, via="command line")
    return output


def steering_jobs(*, user):
    """Steering jobs whose result this user may read: steerers only; the jobs policy (admins all,
    researchers their institution's, seniors their own), on SAEs the user may still steer with."""
    if not can_steer(user):
        return Job.objects.none()
    saes = list(steerable_saes(user=user).values_list("pk", flat=True))
    return jobs_visible_to(user, Job.objects.filter(kind=Job.Kind.STEER, parameters__sae_id__in=saes)).order_by(
        "-created_at", "-id"
    )
