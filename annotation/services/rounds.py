"""The round lifecycle: create (with its latents and assignments), open, close, reveal, follow up, discuss."""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Institution, Role
from features.models import SAE, Latent

from ..models import PLATFORM_CONSENSUS_METHOD, Assignment, Comment, Round, RubricVersion
from ..stats.routing import RoutingConfig
from .assignments import assignment_plan
from .errors import InvalidInput, RoundStateError
from .rubrics import ConceptSpec, rubric_version_create

SELECTION_RULES = {
    "random": "Random",
    "highest_density": "Highest density",
    "lowest_entropy": "Lowest monosemanticity entropy",
    "needs_another_round": "Ambiguous, before adjudication (needs another round)",
    "hand": "Hand list of latent indices",
}
COMMENT_MAX_LENGTH = 5000


def latents_select(
    *,
    sae: SAE,
    rule: str,
    n_latents: int | None = None,
    indices: Sequence[int] = (),
    seed: int = 0,
    for_detection: bool = False,
) -> list[Latent]:
    """Pick latents of `sae` by rule. Detection rounds draw only from latents with a consensus label."""
    if rule not in SELECTION_RULES:
        raise InvalidInput(f"unknown selection rule '{rule}'; choose one of {', '.join(SELECTION_RULES)}")
    candidates = Latent.objects.filter(sae=sae)
    if for_detection:
        candidates = candidates.filter(
            status=Latent.Status.CONSENSUS,
            consensus__sae=sae,
            consensus__method=PLATFORM_CONSENSUS_METHOD,
        )
    if rule == "hand":
        wanted = list(dict.fromkeys(int(index) for index in indices))
        if not wanted:
            raise InvalidInput("a hand list needs at least one latent index")
        found = {latent.index: latent for latent in candidates.filter(index__in=wanted)}
        missing = [index for index in wanted if index not in found]
        if missing:
            what = "latents with a consensus label" if for_detection else f"latents of {sae.name}"
            raise InvalidInput(f"not {what}: {', '.join(map(str, missing[:20]))}")
        return [found[index] for index in wanted]
    if not n_latents or n_latents < 1:
        raise InvalidInput("say how many latents the round takes (n_latents ≥ 1)")
    if rule == "random":
        ids = list(candidates.values_list("pk", flat=True))
        chosen = set(random.Random(seed).sample(ids, min(n_latents, len(ids))))
        selected = [latent for latent in candidates.filter(pk__in=chosen)]
    elif rule == "highest_density":
        selected = list(candidates.order_by("-density", "index")[:n_latents])
    elif rule == "lowest_entropy":
        selected = list(candidates.filter(tag_entropy__isnull=False).order_by("tag_entropy", "index")[:n_latents])
    else:
        selected = list(
            candidates.filter(
                consensus__sae=sae,
                consensus__method=PLATFORM_CONSENSUS_METHOD,
                consensus__routing="another_round",
            )
            .distinct()
            .order_by("index")[:n_latents]
        )
    if not selected:
        raise InvalidInput(f"the rule '{rule}' selects no latent of {sae.name}")
    return selected


def _raters_default(*, institutions: Sequence[Institution]):
    return (
        get_user_model()
        .objects.filter(
            is_active=True,
            profile__role__in=[Role.PHYSICIAN, Role.SENIOR],
            profile__institution__in=institutions,
        )
        .select_related("profile")
        .order_by("pk")
    )


def _check_raters(*, raters, institutions: Sequence[Institution]) -> dict:
    institution_ids = {institution.pk for institution in institutions}
    by_rater = {}
    for rater in raters:
        profile = getattr(rater, "profile", None)
        if profile is None or profile.role not in (Role.PHYSICIAN, Role.SENIOR) or not rater.is_active:
            raise InvalidInput(f"{rater.get_username()} is not an active physician or senior physician")
        if profile.institution_id not in institution_ids:
            raise InvalidInput(f"{rater.get_username()} belongs to no institution of this round")
        by_rater[rater.pk] = profile.institution_id
    return by_rater


def _check_sae_shareable(*, sae: SAE, institutions: Sequence[Institution]) -> None:
    corpus = sae.activation_set.corpus if sae.activation_set_id else None
    if corpus is not None and corpus.institution_id is not None:
        outsiders = [i.code for i in institutions if i.pk != corpus.institution_id]
        if outsiders:
            raise InvalidInput(
                f"{sae.name} was trained on a corpus private to {corpus.institution.code}; raters of "
                f"{', '.join(outsiders)} may not see its snippets"
            )


def round_create(
    *,
    name: str,
    kind: str,
    sae: SAE,
    rubric_version: RubricVersion,
    institutions: Sequence[Institution],
    overlap: int,
    repeat_fraction: float = 0.0,
    blind: bool = True,
    selection_rule: str,
    n_latents: int | None = None,
    latent_indices: Sequence[int] = (),
    deadline: datetime | None = None,
    raters=None,
    seed: int | None = None,
    parent: Round | None = None,
    detection_per_side: int = 5,
    min_repeats: int = 3,
    routing: RoutingConfig | None = None,
    simulated: bool = False,
    by,
) -> Round:
    """A draft round with its latents and every rater's queue; detection rounds also get their items.

    Every rater gets at least `min_repeats` hidden repeats whatever `repeat_fraction` says; `routing`
    (default: DESIGN §5's R = 2, τ = 0.5, top posterior 0.6) is how the SAE-wide consensus routes
    latents when this round closes; `simulated` marks a round labelled by simulated raters (the demo)."""
    from .detection import detection_items_create

    if kind not in Round.Kind.values:
        raise InvalidInput(f"unknown round kind '{kind}'")
    if not name.strip():
        raise InvalidInput("the round needs a name")
    institutions = list(institutions)
    if not institutions:
        raise InvalidInput("pick at least one institution")
    if deadline is not None and deadline <= timezone.now():
        raise InvalidInput("the deadline is in the past")
    if kind == Round.Kind.DETECTION:
        repeat_fraction, min_repeats = 0.0, 0  # detection answers are scored against the truth, not oneself
    if min_repeats < 0:
        raise InvalidInput("the minimum number of hidden repeats cannot be negative")
    routing = routing if routing is not None else RoutingConfig()
    _check_sae_shareable(sae=sae, institutions=institutions)
    seed = secrets.randbelow(2**31) if seed is None else seed
    latents = latents_select(
        sae=sae,
        rule=selection_rule,
        n_latents=n_latents,
        indices=latent_indices,
        seed=seed,
        for_detection=kind == Round.Kind.DETECTION,
    )
    raters = list(raters) if raters is not None else list(_raters_default(institutions=institutions))
    institution_of = _check_raters(raters=raters, institutions=institutions)
    plan = assignment_plan(
        latents=[latent.pk for latent in latents],
        raters=institution_of,
        overlap=overlap,
        repeat_fraction=repeat_fraction,
        seed=seed,
        min_repeats=min_repeats,
    )
    with transaction.atomic():
        round_ = Round.objects.create(
            name=name.strip(),
            kind=kind,
            sae=sae,
            rubric_version=rubric_version,
            coordinator=by,
            overlap=overlap,
            repeat_fraction=repeat_fraction,
            min_repeats=min_repeats,
            blind=blind,
            deadline=deadline,
            parent=parent,
            routing_min_rounds=routing.min_rounds,
            routing_entropy_ceiling=routing.entropy_ceiling,
            routing_top_posterior_floor=routing.top_posterior_floor,
            simulated=simulated,
            selection_rule=selection_rule,
            selection_parameters={
                "n_latents": len(latents),
                "seed": seed,
                "indices": [latent.index for latent in latents] if selection_rule == "hand" else [],
            },
        )
        round_.institutions.set(institutions)
        round_.latents.set(latents)
        originals = Assignment.objects.bulk_create(
            Assignment(round=round_, latent_id=item.latent, rater_id=item.rater, position=item.position)
            for item in plan
            if not item.is_repeat
        )
        original_of = {(a.latent_id, a.rater_id): a.pk for a in originals}
        Assignment.objects.bulk_create(
            Assignment(
                round=round_,
                latent_id=item.latent,
                rater_id=item.rater,
                position=item.position,
                is_repeat=True,
                repeat_of_id=original_of[(item.latent, item.rater)],
            )
            for item in plan
            if item.is_repeat
        )
        if kind == Round.Kind.DETECTION:
            detection_items_create(round=round_, latents=latents, per_side=detection_per_side, seed=seed)
        audit_record(
            actor=by,
            action="round.create",
            obj=round_,
            payload={
                "kind": kind,
                "sae": sae.pk,
                "rubric_version": rubric_version.pk,
                "rule": selection_rule,
                "n_latents": len(latents),
                "n_raters": len(institution_of),
                "overlap": overlap,
                "repeat_fraction": repeat_fraction,
                "min_repeats": min_repeats,
                "blind": blind,
                "seed": seed,
                "routing": {
                    "min_rounds": routing.min_rounds,
                    "entropy_ceiling": routing.entropy_ceiling,
                    "top_posterior_floor": routing.top_posterior_floor,
                },
                "simulated": simulated,
                "institutions": [institution.code for institution in institutions],
                "parent": parent.pk if parent else None,
            },
        )
        _audit_foreign_enlistment(round_=round_, by=by, institutions=institutions, institution_of=institution_of)
    return round_


def _audit_foreign_enlistment(*, round_: Round, by, institutions, institution_of: dict) -> None:
    """One AuditEvent per institution other than the coordinator's whose physicians the round enlists.

    Coordinators pick raters across institutions by design (docs/access.md, "Enlisting"); the other
    institution then learns of it from its audit log rather than from its physicians' queues."""
    own = getattr(getattr(by, "profile", None), "institution_id", None)
    for institution in institutions:
        if institution.pk == own:
            continue
        audit_record(
            actor=by,
            action="round.enlist_foreign",
            obj=round_,
            payload={
                "institution": institution.code,
                "coordinator_institution": by.profile.institution.code if own is not None else None,
                "n_raters": sum(1 for home in institution_of.values() if home == institution.pk),
            },
        )


def _locked(round_: Round) -> Round:
    return Round.objects.select_for_update().get(pk=round_.pk)


def _copy_state(*, source: Round, target: Round) -> None:
    """The caller's instance learns the new state too, so that it never acts on a stale status."""
    target.status, target.opened_at, target.closed_at = source.status, source.opened_at, source.closed_at


def round_open(*, round: Round, by) -> Round:  # noqa: A002 - the style guide's name for it
    with transaction.atomic():
        round_ = _locked(round)
        if round_.status != Round.Status.DRAFT:
            raise RoundStateError(f"Only a draft round can be opened; '{round_.name}' is {round_.status}.")
        if not round_.assignments.exists():
            raise RoundStateError(f"'{round_.name}' has no assignments to open.")
        round_.status = Round.Status.OPEN
        round_.opened_at = timezone.now()
        round_.save(update_fields=["status", "opened_at"])
        round_.latents.filter(status=Latent.Status.UNLABELLED).update(status=Latent.Status.IN_ROUND)
        audit_record(actor=by, action="round.open", obj=round_)
    _copy_state(source=round_, target=round)
    return round_


def round_close(*, round: Round, by) -> Round:  # noqa: A002
    """Close the round (its labels become immutable) and queue the computation of its statistics.

    The statistics job is sent to a `cpu` worker once the closing commit is done, and the request
    answers at once. A broker that does not answer refuses the close (QueueUnavailable: the round stays
    open, nothing written); one that fails after the commit leaves the statistics `queued` for the
    sweeper to re-send; never a half-closed round."""
    from .statistics_jobs import round_statistics_request

    with transaction.atomic():
        round_ = _locked(round)
        if round_.status != Round.Status.OPEN:
            raise RoundStateError(f"Only an open round can be closed; '{round_.name}' is {round_.status}.")
        round_.status = Round.Status.CLOSED
        round_.closed_at = timezone.now()
        round_.save(update_fields=["status", "closed_at"])
        audit_record(
            actor=by,
            action="round.close",
            obj=round_,
            payload={"n_labels": round_.assignments.filter(label__isnull=False).count()},
        )
        round_statistics_request(round=round_, by=by)
    _copy_state(source=round_, target=round)
    round.statistics_status, round.statistics_token = round_.statistics_status, round_.statistics_token
    return round_


def round_reveal(*, round: Round, by) -> Round:  # noqa: A002
    """closed → revealed, calibration rounds only, once their statistics job is done (409 before)."""
    with transaction.atomic():
        round_ = _locked(round)
        if round_.kind != Round.Kind.CALIBRATION:
            raise RoundStateError(
                f"Only calibration rounds are revealed; '{round_.name}' is a {round_.kind} round, whose labels "
                "stay blind so that later judgments stay independent."
            )
        if round_.status != Round.Status.CLOSED:
            raise RoundStateError(f"Only a closed round can be revealed; '{round_.name}' is {round_.status}.")
        # Raters discuss the distribution beside the agreement and consensus: not before those exist.
        if round_.statistics_status != Round.StatisticsStatus.DONE:
            if round_.statistics_pending:
                why = f"they are still computing ({round_.statistics_progress:.0%})"
            elif round_.statistics_status == Round.StatisticsStatus.FAILED:
                why = f"their job failed ({round_.statistics_message.removeprefix('failed: ')}); recompute them first"
            else:
                why = "they were never computed; recompute them first"
            raise RoundStateError(f"'{round_.name}' is revealed once its statistics are done: {why}.")
        round_.status = Round.Status.REVEALED
        round_.save(update_fields=["status"])
        audit_record(actor=by, action="round.reveal", obj=round_)
    _copy_state(source=round_, target=round)
    return round_


def round_follow_up_create(
    *,
    parent: Round,
    guidelines: str,
    concepts: Sequence[ConceptSpec] | None = None,
    name: str = "",
    deadline: datetime | None = None,
    token: str = "",
    by,
) -> Round:
    """After a calibration round's discussion: a new rubric version and a calibration round on the same
    latents, raters and institutions, so that its alpha answers whether agreement rose.

    `token` (the form's, one per rendering) makes a resubmission return the follow-up it already made
    instead of a second rubric version and draft round."""
    if parent.kind != Round.Kind.CALIBRATION:
        raise RoundStateError("Only a calibration round has a follow-up.")
    if parent.status not in (Round.Status.CLOSED, Round.Status.REVEALED):
        raise RoundStateError(f"A follow-up needs the round closed first; '{parent.name}' is {parent.status}.")
    raters = list(get_user_model().objects.filter(assignments__round=parent).distinct().select_related("profile"))
    indices = list(parent.latents.order_by("index").values_list("index", flat=True))
    token = token.strip()[:64]
    with transaction.atomic():
        if token:
            # The parent's row lock serialises two submissions of one form; the second finds the first's round.
            Round.objects.select_for_update().filter(pk=parent.pk).first()
            made = parent.follow_ups.filter(selection_parameters__follow_up_token=token).first()
            if made is not None:
                return made
        version = rubric_version_create(parent=parent.rubric_version, guidelines=guidelines, concepts=concepts, by=by)
        follow_up = round_create(
            name=name or f"{parent.name} — follow-up (rubric v{version.version})",
            kind=Round.Kind.CALIBRATION,
            sae=parent.sae,
            rubric_version=version,
            institutions=list(parent.institutions.all()),
            overlap=parent.overlap,
            repeat_fraction=parent.repeat_fraction,
            blind=parent.blind,
            min_repeats=parent.min_repeats,
            simulated=parent.simulated,
            routing=RoutingConfig(
                min_rounds=parent.routing_min_rounds,
                entropy_ceiling=parent.routing_entropy_ceiling,
                top_posterior_floor=parent.routing_top_posterior_floor,
            ),
            selection_rule="hand",
            latent_indices=indices,
            deadline=deadline,
            raters=raters,
            parent=parent,
            by=by,
        )
        if token:
            follow_up.selection_parameters = {**follow_up.selection_parameters, "follow_up_token": token}
            follow_up.save(update_fields=["selection_parameters"])
    return follow_up


def round_delete(*, round: Round, by) -> None:  # noqa: A002
    """Delete a draft round (it has no labels yet) and, when nothing else uses it, the rubric version that
    was made for it, so that the next version number follows on."""
    with transaction.atomic():
        round_ = _locked(round)
        if round_.status != Round.Status.DRAFT:
            raise RoundStateError(f"Only a draft round can be deleted; '{round_.name}' is {round_.status}.")
        version = round_.rubric_version
        audit_record(
            actor=by, action="round.delete", obj=round_, payload={"name": round_.name, "rubric_version": version.pk}
        )
        round_.delete()
        latest = version.rubric.versions.order_by("-version").first()
        if (
            version.version > 1
            and latest is not None
            and latest.pk == version.pk
            and not version.rounds.exists()
            and not version.children.exists()
        ):
            version.delete()


def round_deadline_set(*, round: Round, deadline: datetime | None, by) -> Round:  # noqa: A002
    """Move (or remove) the deadline of a round that still takes labels."""
    with transaction.atomic():
        round_ = _locked(round)
        if round_.status not in (Round.Status.DRAFT, Round.Status.OPEN):
            raise RoundStateError(f"'{round_.name}' is {round_.status}: its deadline no longer matters.")
        if deadline is not None and deadline <= timezone.now():
            raise InvalidInput("the deadline is in the past")
        round_.deadline = deadline
        round_.save(update_fields=["deadline"])
        audit_record(
            actor=by,
            action="round.deadline",
            obj=round_,
            payload={"deadline": deadline.isoformat() if deadline else None},
        )
    round.deadline = deadline
    return round_


def comment_create(*, round: Round, latent: Latent, text: str, by) -> Comment:  # noqa: A002
    """A calibration-discussion comment on one latent of a revealed round."""
    text = text.strip()
    if not text:
        raise InvalidInput("the comment is empty")
    if len(text) > COMMENT_MAX_LENGTH:
        raise InvalidInput(f"a comment holds at most {COMMENT_MAX_LENGTH} characters")
    if round.status != Round.Status.REVEALED:
        raise RoundStateError("Discussion opens when the round is revealed.")
    if not round.latents.filter(pk=latent.pk).exists():
        raise InvalidInput("this latent is not part of the round")
    with transaction.atomic():
        comment = Comment.objects.create(round=round, latent=latent, author=by, text=text)
        audit_record(actor=by, action="comment.create", obj=comment, payload={"round": round.pk, "latent": latent.pk})
    return comment
