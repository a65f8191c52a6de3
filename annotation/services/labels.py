"""Submitting a label: validated, idempotent on the client's key, edits kept as revisions, frozen at close."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction

from accounts.audit import audit_record

from ..models import RATIONALE_MIN_LENGTH, Assignment, Label, LabelRevision, Round
from .errors import InvalidInput, RoundStateError

FREE_TEXT_MAX_LENGTH = 300
IDEMPOTENCY_KEY_MAX_LENGTH = 64
# A page left open overnight should not count as a night of work.
TIME_SPENT_CAP_SECONDS = 4 * 3600


@dataclass(frozen=True)
class LabelSubmission:
    """created: a first label for the assignment; replayed: this key was seen before and nothing changed."""

    label: Label
    created: bool
    replayed: bool


def deadline_check(*, round_id: int) -> None:
    """Past the round's deadline nothing more is accepted (read fresh: the coordinator may extend it)."""
    from django.utils import timezone

    deadline = Round.objects.filter(pk=round_id).values_list("deadline", flat=True).first()
    if deadline is not None and timezone.now() > deadline:
        raise RoundStateError(
            f"The deadline of this round passed on {deadline:%Y-%m-%d %H:%M} UTC: no more "
            "labels are accepted. Ask the round's coordinator to extend it."
        )


def round_status_shared_lock(*, round_id: int) -> str:
    """The round's status, read under a shared row lock: labels may be written concurrently, but
    `round_close` (FOR UPDATE) waits for them, and no label slips in after the round closed."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT status FROM annotation_round WHERE id = %s FOR SHARE", [round_id])
            return cursor.fetchone()[0]
    # SQLite (the embedded default) serialises writers with BEGIN IMMEDIATE already.
    return Round.objects.values_list("status", flat=True).get(pk=round_id)


def _check(
    *,
    assignment: Assignment,
    concept_code: str,
    confidence,
    rationale: str,
    free_text: str,
    time_spent_seconds,
    idempotency_key: str,
):
    concept = assignment.round.rubric_version.concepts.filter(code=concept_code).first()
    if concept is None:
        raise InvalidInput(f"'{concept_code}' is not a concept of this round's rubric")
    try:
        confidence = int(confidence)
    except (TypeError, ValueError):
        raise InvalidInput("confidence must be a whole number from 1 to 5") from None
    if not 1 <= confidence <= 5:
        raise InvalidInput("confidence must be a whole number from 1 to 5")
    rationale = (rationale or "").strip()
    if len(rationale) < RATIONALE_MIN_LENGTH:
        raise InvalidInput(
            f"the rationale needs at least {RATIONALE_MIN_LENGTH} characters: say what in the "
            "snippets made you choose this concept"
        )
    free_text = (free_text or "").strip()
    if len(free_text) > FREE_TEXT_MAX_LENGTH:
        raise InvalidInput(f"the free-text name holds at most {FREE_TEXT_MAX_LENGTH} characters")
    try:
        time_spent = float(time_spent_seconds or 0)
    except (TypeError, ValueError):
        raise InvalidInput("time spent must be a number of seconds") from None
    if not math.isfinite(time_spent) or time_spent < 0:
        raise InvalidInput("time spent must be a non-negative number of seconds")
    if len(idempotency_key or "") > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise InvalidInput(f"the idempotency key holds at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters")
    return concept, confidence, rationale, free_text, min(time_spent, TIME_SPENT_CAP_SECONDS)


def _replay_of(*, assignment: Assignment, key: str) -> Label | None:
    if not key:
        return None
    label = Label.objects.filter(idempotency_key=key).first()
    if label is None:
        revision = LabelRevision.objects.filter(idempotency_key=key).select_related("label").first()
        label = revision.label if revision is not None else None
    if label is not None and label.assignment_id != assignment.pk:
        raise InvalidInput("this idempotency key was already used for another item; send a fresh key")
    return label


def label_submit(
    *,
    assignment: Assignment,
    concept_code: str,
    confidence,
    rationale: str,
    free_text: str = "",
    time_spent_seconds=0.0,
    idempotency_key: str = "",
    by,
) -> LabelSubmission:
    """Create the assignment's label, or edit it while the round is open (the old state becomes a
    LabelRevision). A retry with an idempotency key already seen returns the label unchanged."""
    if assignment.rater_id != getattr(by, "pk", None):
        raise PermissionDenied("Only the rater an item is assigned to may label it.")
    if assignment.round.kind == Round.Kind.DETECTION:
        raise RoundStateError("Detection rounds take match answers, not labels.")
    key = (idempotency_key or "").strip()
    concept, confidence, rationale, free_text, time_spent = _check(
        assignment=assignment,
        concept_code=concept_code,
        confidence=confidence,
        rationale=rationale,
        free_text=free_text,
        time_spent_seconds=time_spent_seconds,
        idempotency_key=key,
    )
    with transaction.atomic():
        status = round_status_shared_lock(round_id=assignment.round_id)
        if status != Round.Status.OPEN:
            verb = "are immutable" if status in (Round.Status.CLOSED, Round.Status.REVEALED) else "cannot be given yet"
            raise RoundStateError(f"This round is {status}: its labels {verb}.")
        replayed = _replay_of(assignment=assignment, key=key)
        if replayed is not None:
            return LabelSubmission(label=replayed, created=False, replayed=True)
        deadline_check(round_id=assignment.round_id)
        label = Label.objects.select_for_update().filter(assignment=assignment).first()
        if label is None:
            try:
                with transaction.atomic():
                    label = Label.objects.create(
                        assignment=assignment,
                        concept=concept,
                        free_text=free_text,
                        confidence=confidence,
                        rationale=rationale,
                        time_spent_seconds=time_spent,
                        idempotency_key=key,
                    )
            except IntegrityError:
                # A concurrent retry of this very submission won the race: answer as a replay.
                replayed = _replay_of(assignment=assignment, key=key)
                if replayed is None:
                    raise RoundStateError(
                        "This item was labelled at the same moment from elsewhere; reload it."
                    ) from None
                return LabelSubmission(label=replayed, created=False, replayed=True)
            audit_record(
                actor=by,
                action="label.submit",
                obj=label,
                payload={"assignment": assignment.pk, "concept": concept.code, "confidence": confidence},
            )
            return LabelSubmission(label=label, created=True, replayed=False)
        unchanged = (
            label.concept_id == concept.pk
            and label.free_text == free_text
            and label.confidence == confidence
            and label.rationale == rationale
        )
        if unchanged:
            return LabelSubmission(label=label, created=False, replayed=True)
        LabelRevision.objects.create(
            label=label,
            concept_code=label.concept.code,
            free_text=label.free_text,
            confidence=label.confidence,
            rationale=label.rationale,
            idempotency_key=label.idempotency_key,
        )
        previous = label.concept.code
        label.concept = concept
        label.free_text = free_text
        label.confidence = confidence
        label.rationale = rationale
        label.time_spent_seconds += time_spent
        label.idempotency_key = key
        label.save()
        audit_record(
            actor=by,
            action="label.edit",
            obj=label,
            payload={"assignment": assignment.pk, "from": previous, "to": concept.code},
        )
    return LabelSubmission(label=label, created=False, replayed=False)
