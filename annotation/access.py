"""Who may read and who may write each annotation resource: one queryset function per resource and direction.

Every list, detail, input field, page, export and admin of annotation asks here (docs/access.md has the
table). Two rules sit under all of them: a round on an SAE the user may not see does not exist for
them (404), and nobody reads the content of a round (labels, rationales, free text, confidences,
agreement, consensus) before it is closed; raters not before it is revealed. Before close, coordinators
and researchers see progress only (how many items are done, per rater pseudonym and per institution).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import Role
from accounts.permissions import (
    ADJUDICATORS,
    LABEL_READERS,
    LABELLERS,
    ROUND_MANAGERS,
    has_role,
    institution_of,
    role_of,
    saes_visible_to,
)
from features.models import Latent

from .models import (
    Adjudication,
    Assignment,
    Comment,
    Consensus,
    DetectionResponse,
    Label,
    Round,
    RubricVersion,
)

# Statuses in which a round's labels are frozen, so that the people who watch it may read them.
CONTENT_STATUSES = (Round.Status.CLOSED, Round.Status.REVEALED)
# Statuses in which a rater still labels: no one else's label of the latent may reach them then.
LABELLING_STATUSES = (Round.Status.DRAFT, Round.Status.OPEN)


def _rounds():
    return Round.objects.select_related("sae", "rubric_version__rubric", "coordinator__profile")


# -- rounds ---------------------------------------------------------------------------------------------


def rounds_readable(user) -> QuerySet[Round]:
    """Raters: the rounds they hold items in, once opened. Coordinators: rounds they or colleagues
    coordinate, or that include their institution. Researchers: rounds on SAEs they may see. Admins: all.
    Nobody sees a round on an SAE they may not see."""
    role = role_of(user)
    if role is None:
        return Round.objects.none()
    if role == Role.ADMIN:
        return _rounds()
    if role == Role.RESEARCHER:
        return saes_visible_to(user, _rounds(), prefix="sae__")
    if role == Role.COORDINATOR:
        institution = institution_of(user)
        mine = Round.objects.filter(
            Q(coordinator=user) | Q(institutions=institution) | Q(coordinator__profile__institution=institution)
        )
        return saes_visible_to(user, _rounds().filter(pk__in=mine.values("pk")), prefix="sae__")
    held = Assignment.objects.filter(rater=user).values("round_id")
    return saes_visible_to(user, _rounds().filter(pk__in=held).exclude(status=Round.Status.DRAFT), prefix="sae__")


def rounds_watchable(user) -> QuerySet[Round]:
    """Rounds whose progress (and, once closed, statistics and labels) the user follows: never a rater's."""
    if not has_role(user, LABEL_READERS):
        return Round.objects.none()
    return rounds_readable(user)


def rounds_writable(user) -> QuerySet[Round]:
    """Open, close, reveal, recompute, follow up, edit in the admin: admins any round; a coordinator the
    rounds they or a colleague of their institution coordinate, on SAEs they may see."""
    role = role_of(user)
    if role == Role.ADMIN:
        return _rounds()
    if role != Role.COORDINATOR:
        return Round.objects.none()
    mine = Q(coordinator=user) | Q(coordinator__profile__institution=institution_of(user))
    return saes_visible_to(user, _rounds().filter(mine), prefix="sae__")


def may_manage_round(user, round_: Round) -> bool:
    return rounds_writable(user).filter(pk=round_.pk).exists()


def may_watch_round(user, round_: Round) -> bool:
    """Progress of a round (and its content once closed): its coordinators, the coordinators of the
    institutions taking part, researchers who may see its SAE, admins. Never a rater (anchoring)."""
    return rounds_watchable(user).filter(pk=round_.pk).exists()


def round_content_readable(user, round_: Round) -> bool:
    """Labels, rationales, agreement, consensus and reliability of one round: its watchers, once closed."""
    return round_.status in CONTENT_STATUSES and rounds_watchable(user).filter(pk=round_.pk).exists()


# -- assignments and labels -------------------------------------------------------------------------------


def assignments_readable(user) -> QuerySet[Assignment]:
    """Only one's own items, never in a draft round. Watchers read progress counts, not assignment rows."""
    if not has_role(user, LABELLERS):
        return Assignment.objects.none()
    return Assignment.objects.filter(rater=user).exclude(round__status=Round.Status.DRAFT)


def assignments_writable(user) -> QuerySet[Assignment]:
    """Items the user may label or answer: their own outside drafts (the services answer 409 once closed)."""
    return assignments_readable(user)


def labels_readable(user) -> QuerySet[Label]:
    """One's own labels always. Other raters' labels: the watchers of a round once it is closed; its raters
    once it is revealed; a senior the closed rounds' labels of the latents in their adjudication queue.
    Nobody, admins included, reads a draft or open round's labels through the application."""
    role = role_of(user)
    if role is None:
        return Label.objects.none()
    visible = Q(assignment__rater=user)
    frozen = Q(assignment__round__status__in=CONTENT_STATUSES)
    if role in LABEL_READERS:
        visible |= frozen & Q(assignment__round__in=rounds_watchable(user).values("pk"))
    else:
        rated = Assignment.objects.filter(rater=user).values("round_id")
        visible |= Q(assignment__round__status=Round.Status.REVEALED, assignment__round__in=rated)
        if role in ADJUDICATORS:
            visible |= frozen & Q(assignment__latent__in=latents_adjudicable(user).values("pk"))
    return saes_visible_to(user, Label.objects.filter(visible), prefix="assignment__round__sae__")


def detection_responses_readable(user) -> QuerySet[DetectionResponse]:
    """One's own answers; other raters' answers (a detection round's content): the round's watchers once
    it is closed, like labels. Nobody, admins included, reads a draft or open round's answers."""
    if role_of(user) is None:
        return DetectionResponse.objects.none()
    visible = Q(rater=user)
    if has_role(user, LABEL_READERS):
        visible |= Q(item__round__status__in=CONTENT_STATUSES, item__round__in=rounds_watchable(user).values("pk"))
    return saes_visible_to(user, DetectionResponse.objects.filter(visible), prefix="item__round__sae__")


def labels_writable(user) -> QuerySet[Label]:
    """One's own labels, while the round is open."""
    if not has_role(user, LABELLERS):
        return Label.objects.none()
    return Label.objects.filter(assignment__rater=user, assignment__round__status=Round.Status.OPEN)


# -- discussion, consensus, adjudication -------------------------------------------------------------------


def may_see_distribution(user, round_: Round) -> bool:
    """The anonymised distribution and rationales of a round: its raters once revealed, its watchers once closed."""
    if (
        round_.status == Round.Status.REVEALED
        and has_role(user, LABELLERS)
        and round_.assignments.filter(rater_id=user.pk).exists()
    ):
        return True
    return round_content_readable(user, round_)


def may_discuss_round(user, round_: Round) -> bool:
    """Calibration discussion: after reveal, the round's raters and its managing and watching coordinators."""
    if round_.status != Round.Status.REVEALED:
        return False
    if has_role(user, LABELLERS) and round_.assignments.filter(rater_id=user.pk).exists():
        return True
    return has_role(user, ROUND_MANAGERS) and may_watch_round(user, round_)


def comments_readable(user) -> QuerySet[Comment]:
    """Calibration comments of the rounds whose distribution the user may see."""
    if role_of(user) is None:
        return Comment.objects.none()
    rated = Assignment.objects.filter(rater=user).values("round_id") if has_role(user, LABELLERS) else []
    revealed_and_rated = Q(round__status=Round.Status.REVEALED, round__in=rated)
    watched = Q(round__status__in=CONTENT_STATUSES, round__in=rounds_watchable(user).values("pk"))
    return Comment.objects.filter(revealed_and_rated | watched)


def latents_adjudicable(user) -> QuerySet[Latent]:
    """The adjudication queue: persistently ambiguous latents (routed there after closed rounds) of SAEs the
    user may see, except those the user still labels in a draft or open round, whose earlier labels would
    anchor them."""
    if not has_role(user, ADJUDICATORS):
        return Latent.objects.none()
    still_labelling = Assignment.objects.filter(
        latent_id=OuterRef("pk"), rater=user, round__status__in=LABELLING_STATUSES
    )
    return saes_visible_to(user, Latent.objects.filter(status=Latent.Status.AMBIGUOUS), prefix="sae__").filter(
        ~Exists(still_labelling)
    )


def latents_blind_to(user) -> QuerySet[Latent]:
    """Latents whose consensus, agreement or adjudication a labeller (physician, senior) must not learn:
    every latent of an open or closed-but-unrevealed round (that content is blind to raters until reveal,
    and the SAE-wide consensus mixes rounds), and every latent the user still holds in a round not revealed.
    A clinician reads only what revealed rounds concluded, so the same open-or-closed rule holds for them (they
    hold no assignments). Nobody else has any. The one rule for explain-a-note and steering by concept (no
    second copy)."""
    if not has_role(user, LABELLERS | {Role.CLINICIAN}):
        return Latent.objects.none()
    blind = (Round.Status.OPEN, Round.Status.CLOSED)
    in_blind_round = Round.objects.filter(latents=OuterRef("pk"), status__in=blind)
    # A round's latents are also those it assigns (a round's latent list and its assignments are kept apart).
    assigned_in_blind_round = Assignment.objects.filter(latent_id=OuterRef("pk"), round__status__in=blind)
    held = Assignment.objects.filter(latent_id=OuterRef("pk"), rater=user).exclude(round__status=Round.Status.REVEALED)
    return Latent.objects.filter(Exists(in_blind_round) | Exists(assigned_in_blind_round) | Exists(held))


def may_adjudicate_latent(user, latent: Latent) -> bool:
    """Only a latent in the user's adjudication queue (see latents_adjudicable)."""
    return latents_adjudicable(user).filter(pk=latent.pk).exists()


def may_read_latent_labels(user, latent: Latent) -> bool:
    """The latent page and its label history: label readers on SAEs they may see (the history itself is
    filtered by labels_readable)."""
    return (
        has_role(user, LABEL_READERS)
        and saes_visible_to(user, Latent.objects.filter(pk=latent.pk), prefix="sae__").exists()
    )


def adjudications_readable(user) -> QuerySet[Adjudication]:
    """Label readers and admins: adjudications on SAEs they may see. Seniors: the same, except another
    senior's decision on a latent they still label in a draft or open round (it would anchor them)."""
    if not has_role(user, ADJUDICATORS | LABEL_READERS):
        return Adjudication.objects.none()
    visible = saes_visible_to(user, Adjudication.objects.all(), prefix="latent__sae__")
    if has_role(user, LABEL_READERS | {Role.ADMIN}):
        return visible
    still_labelling = Assignment.objects.filter(
        latent_id=OuterRef("latent_id"), rater=user, round__status__in=LABELLING_STATUSES
    )
    return visible.filter(Q(senior=user) | ~Exists(still_labelling))


def consensus_readable(user) -> QuerySet[Consensus]:
    """Consensus rows (computed from closed rounds only): label readers on SAEs they may see; seniors for
    the latents in their queue."""
    role = role_of(user)
    if role in LABEL_READERS:
        return saes_visible_to(user, Consensus.objects.all(), prefix="latent__sae__")
    if role in ADJUDICATORS:
        return Consensus.objects.filter(latent__in=latents_adjudicable(user).values("pk"))
    return Consensus.objects.none()


def rubric_versions_readable(user) -> QuerySet[RubricVersion]:
    """Rubrics carry no patient data and are shared across institutions."""
    return RubricVersion.objects.all() if role_of(user) is not None else RubricVersion.objects.none()


def rubric_versions_writable(user) -> QuerySet[RubricVersion]:
    """Rubric versions a coordinator may derive from or put a round on."""
    return RubricVersion.objects.all() if has_role(user, ROUND_MANAGERS) else RubricVersion.objects.none()
