"""Detection rounds: balanced, shuffled activating and non-activating snippets per consensus label;
raters say which match; accuracy per latent validates the label at ≥ 0.7 (MedSAE)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.audit import audit_record
from features.models import Latent, LatentExample, Snippet

from ..models import (
    DETECTION_VALIDATED_AT,
    AgreementReport,
    Assignment,
    Consensus,
    DetectionItem,
    DetectionResponse,
    Round,
)
from .errors import InvalidInput, RoundStateError
from .labels import deadline_check, round_status_shared_lock


def _consensus_row(latent: Latent) -> Consensus | None:
    return Consensus.objects.of_sae(latent.sae_id).platform().filter(latent=latent).first()


def detection_items_create(*, round: Round, latents: Sequence[Latent], per_side: int, seed: int) -> int:  # noqa: A002
    """Per latent, `per_side` activating snippets (top and quantile examples) and as many non-activating
    ones (its negative examples, else snippets of the SAE's corpus that never activated it), shuffled."""
    if per_side < 1:
        raise InvalidInput("a detection set needs at least one snippet per side")
    rng = random.Random(seed)
    corpus_id = round.sae.activation_set.corpus_id if round.sae.activation_set_id else None
    items = []
    for latent in latents:
        consensus = _consensus_row(latent)
        if consensus is None:
            raise InvalidInput(f"latent {latent.index} has no consensus label to test")
        examples = list(LatentExample.objects.filter(latent=latent).values_list("snippet_id", "kind", "max_activation"))
        activating = list(dict.fromkeys(s for s, kind, value in examples if kind != "negative" and value > 0))
        # A snippet that activates the latent anywhere is never offered as a non-activating one.
        negative = list(dict.fromkeys(s for s, kind, _ in examples if kind == "negative" and s not in set(activating)))
        if len(negative) < per_side and corpus_id is not None:
            seen = {s for s, _, _ in examples}
            extra = Snippet.objects.filter(corpus_id=corpus_id).exclude(pk__in=seen).values_list("pk", flat=True)
            negative += list(extra[: 4 * per_side])
        n = min(per_side, len(activating), len(negative))
        if n == 0:
            raise InvalidInput(f"latent {latent.index} lacks activating or non-activating snippets for detection")
        chosen = [(s, True) for s in rng.sample(activating, n)] + [(s, False) for s in rng.sample(negative, n)]
        rng.shuffle(chosen)
        items += [
            DetectionItem(
                round=round,
                latent=latent,
                snippet_id=snippet,
                is_activating=is_activating,
                position=position,
                concept_code=consensus.map_concept,
            )
            for position, (snippet, is_activating) in enumerate(chosen)
        ]
    DetectionItem.objects.bulk_create(items)
    return len(items)


def detection_response_submit(*, assignment: Assignment, answers: Mapping[int, bool], by) -> int:
    """Record (or, while the round is open, change) the rater's match answers for one latent's items."""
    if assignment.rater_id != getattr(by, "pk", None):
        raise PermissionDenied("Only the rater an item is assigned to may answer it.")
    if assignment.round.kind != Round.Kind.DETECTION:
        raise RoundStateError("Only detection rounds take match answers.")
    items = {
        item.pk: item
        for item in DetectionItem.objects.filter(round_id=assignment.round_id, latent_id=assignment.latent_id)
    }
    answers = {int(item_id): bool(value) for item_id, value in answers.items()}
    unknown = set(answers) - set(items)
    if unknown:
        raise InvalidInput("some answers name snippets that are not part of this item")
    missing = set(items) - set(answers)
    if missing:
        raise InvalidInput(f"answer every snippet: {len(missing)} still without an answer")
    with transaction.atomic():
        status = round_status_shared_lock(round_id=assignment.round_id)
        if status != Round.Status.OPEN:
            raise RoundStateError(f"This round is {status}: its answers cannot change.")
        deadline_check(round_id=assignment.round_id)
        for item_id, says_match in answers.items():
            DetectionResponse.objects.update_or_create(item_id=item_id, rater=by, defaults={"says_match": says_match})
        audit_record(actor=by, action="detection.answer", obj=assignment, payload={"n_items": len(answers)})
    return len(answers)


def detection_accuracy_compute(*, round: Round, by=None) -> dict[int, float]:  # noqa: A002
    """Per latent, the share of correct answers (says_match == is_activating), stored on the latent's
    SAE-wide consensus; the round's mean goes to an AgreementReport."""
    correct: dict[int, list[bool]] = defaultdict(list)
    raters = set()
    for latent_id, rater_id, says_match, is_activating in DetectionResponse.objects.filter(
        item__round=round,
    ).values_list("item__latent_id", "rater_id", "says_match", "item__is_activating"):
        correct[latent_id].append(says_match == is_activating)
        raters.add(rater_id)
    accuracy = {latent_id: sum(marks) / len(marks) for latent_id, marks in correct.items()}
    with transaction.atomic():
        for latent_id, value in accuracy.items():
            Consensus.objects.of_sae(round.sae_id).platform().filter(latent_id=latent_id).update(
                detection_accuracy=value,
                detection_n=len(correct[latent_id]),
                detection_round=round,
            )
        values = list(accuracy.values())
        AgreementReport.objects.update_or_create(
            round=round,
            metric="detection_accuracy",
            level="mean",
            defaults={
                "value": sum(values) / len(values) if values else None,
                "n_units": len(values),
                "n_raters": len(raters),
                "n_pairable": sum(len(marks) for marks in correct.values()),
                "parameters": {
                    "validated": sum(value >= DETECTION_VALIDATED_AT for value in values),
                    "threshold": DETECTION_VALIDATED_AT,
                }
                if values
                else {"reason": "no answers"},
            },
        )
        audit_record(actor=by, action="detection.accuracy", obj=round, payload={"n_latents": len(values)})
    return accuracy
