"""Read paths for rounds, assignments and labels, filtered by what the caller may see."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import Role
from accounts.permissions import institution_of, role_of

from .models import Assignment, Round


def round_list(*, user) -> QuerySet[Round]:
    """Raters see rounds they hold assignments in; coordinators rounds they run or that include their
    institution; researchers and admins every round."""
    role = role_of(user)
    rounds = Round.objects.select_related("sae", "rubric_version__rubric", "coordinator")
    if role is None:
        return rounds.none()
    if role in (Role.RESEARCHER, Role.ADMIN):
        return rounds
    if role == Role.COORDINATOR:
        return rounds.filter(Q(coordinator=user) | Q(institutions=institution_of(user))).distinct()
    return rounds.filter(assignments__rater=user).distinct()


def assignment_list(*, user, round_id: int | None = None) -> QuerySet[Assignment]:
    """Only the caller's own assignments, never anyone else's."""
    assignments = Assignment.objects.filter(rater=user).select_related("round", "latent")
    return assignments.filter(round_id=round_id) if round_id is not None else assignments
