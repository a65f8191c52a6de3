"""Senior adjudication: a decision and its rationale recorded beside the label distribution, never over it."""

from __future__ import annotations

from django.db import transaction

from accounts.audit import audit_record
from features.models import Latent

from ..models import RATIONALE_MIN_LENGTH, Adjudication, Concept, Consensus
from .errors import InvalidInput, RoundStateError


def adjudication_record(*, latent: Latent, concept: Concept, rationale: str, by) -> Adjudication:
    """Decide a persistently ambiguous latent. The consensus row it overrides stays as it was."""
    rationale = (rationale or "").strip()
    if len(rationale) < RATIONALE_MIN_LENGTH:
        raise InvalidInput(f"the rationale needs at least {RATIONALE_MIN_LENGTH} characters")
    with transaction.atomic():
        latent = Latent.objects.select_for_update().get(pk=latent.pk)
        if latent.status != Latent.Status.AMBIGUOUS:
            raise RoundStateError(f"Only ambiguous latents are adjudicated; latent {latent.index} is {latent.status}.")
        if not Concept.objects.filter(pk=concept.pk, rubric_version__rounds__sae_id=latent.sae_id).exists():
            raise InvalidInput("the concept is not from a rubric used for this SAE")
        consensus = Consensus.objects.of_sae(latent.sae_id).platform().filter(latent=latent).first()
        adjudication = Adjudication.objects.create(
            latent=latent, senior=by, concept=concept, rationale=rationale, overrode=consensus
        )
        latent.status = Latent.Status.ADJUDICATED
        latent.save(update_fields=["status"])
        audit_record(
            actor=by,
            action="latent.adjudicate",
            obj=adjudication,
            payload={
                "latent": latent.pk,
                "concept": concept.code,
                "consensus": consensus.map_concept if consensus is not None else None,
            },
        )
    return adjudication
