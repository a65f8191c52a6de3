"""The one place that decides what a user may see and do; views, the API and the admin all ask here."""
from __future__ import annotations

from django.db.models import Q, QuerySet
from rest_framework.permissions import BasePermission

from .models import Institution, Role

LABELLERS = frozenset({Role.PHYSICIAN, Role.SENIOR})
ROUND_MANAGERS = frozenset({Role.COORDINATOR, Role.ADMIN})
JOB_RUNNERS = frozenset({Role.RESEARCHER, Role.ADMIN})
ADJUDICATORS = frozenset({Role.SENIOR, Role.ADMIN})
EXPORTERS = frozenset({Role.RESEARCHER, Role.COORDINATOR, Role.ADMIN})
# Who may read other people's labels, consensus and agreement outside a revealed round: never raters,
# whose judgment those would anchor.
LABEL_READERS = frozenset({Role.RESEARCHER, Role.COORDINATOR, Role.ADMIN})


def role_of(user) -> str | None:
    """The user's role; superusers are admins; anonymous users and users without a profile have none."""
    if not getattr(user, "is_authenticated", False):
        return None
    if user.is_superuser:
        return Role.ADMIN
    profile = getattr(user, "profile", None)
    return profile.role if profile is not None else None


def institution_of(user) -> Institution | None:
    profile = getattr(user, "profile", None) if getattr(user, "is_authenticated", False) else None
    return profile.institution if profile is not None else None


def has_role(user, roles: frozenset[str] | set[str]) -> bool:
    return role_of(user) in roles


def is_admin(user) -> bool:
    return role_of(user) == Role.ADMIN


def can_label(user) -> bool:
    return has_role(user, LABELLERS)


def can_manage_rounds(user) -> bool:
    return has_role(user, ROUND_MANAGERS)


def can_run_jobs(user) -> bool:
    return has_role(user, JOB_RUNNERS)


def can_adjudicate(user) -> bool:
    return has_role(user, ADJUDICATORS)


def can_export(user) -> bool:
    return has_role(user, EXPORTERS)



def can_read_labels(user) -> bool:
    return has_role(user, LABEL_READERS)


def institutions_visible_to(user, queryset: QuerySet) -> QuerySet:
    return queryset if role_of(user) is not None else queryset.none()


def corpora_visible_to(user, queryset: QuerySet, *, prefix: str = "") -> QuerySet:
    """Shared corpora (no institution) are visible to everyone with a role; an institution's
    corpus only to its own members, whatever their role, and to admins."""
    role = role_of(user)
    if role is None:
        return queryset.none()
    if role == Role.ADMIN:
        return queryset
    institution = institution_of(user)
    return queryset.filter(
        Q(**{f"{prefix}institution__isnull": True}) | Q(**{f"{prefix}institution": institution})
    )


def may_see_corpus(user, corpus) -> bool:
    role = role_of(user)
    if role is None:
        return False
    return role == Role.ADMIN or corpus.institution_id is None or corpus.institution_id == getattr(
        institution_of(user), "pk", None
    )


def jobs_visible_to(user, queryset: QuerySet) -> QuerySet:
    """Admins follow every job, researchers their institution's jobs, everyone else the jobs they started."""
    role = role_of(user)
    if role is None:
        return queryset.none()
    if role == Role.ADMIN:
        return queryset
    if role == Role.RESEARCHER:
        return queryset.filter(Q(created_by=user) | Q(created_by__profile__institution=institution_of(user)))
    return queryset.filter(created_by=user)


def may_see_sae(user, sae) -> bool:
    """An SAE trained on a corpus the user may not see stays hidden with that corpus."""
    if role_of(user) is None:
        return False
    activation_set = sae.activation_set
    return activation_set is None or may_see_corpus(user, activation_set.corpus)


def saes_visible_to(user, queryset: QuerySet, *, prefix: str = "") -> QuerySet:
    """Rows of `queryset` whose SAE (reached through `prefix`, e.g. "latent__sae__") the user may see."""
    role = role_of(user)
    if role is None:
        return queryset.none()
    if role == Role.ADMIN:
        return queryset
    return queryset.filter(
        Q(**{f"{prefix}activation_set__isnull": True})
        | Q(**{f"{prefix}activation_set__corpus__institution__isnull": True})
        | Q(**{f"{prefix}activation_set__corpus__institution": institution_of(user)})
    )


def _institution_id(user) -> int | None:
    return getattr(institution_of(user), "pk", None)


def _coordinator_institution_id(round_) -> int | None:
    profile = getattr(round_.coordinator, "profile", None)
    return profile.institution_id if profile is not None else None


def may_manage_round(user, round_) -> bool:
    """Open, close, reveal, re-compute, follow up: admins for every round; a coordinator for the rounds that
    they or a colleague from their own institution coordinate."""
    role = role_of(user)
    if role == Role.ADMIN:
        return True
    if role != Role.COORDINATOR:
        return False
    return round_.coordinator_id == user.pk or _coordinator_institution_id(round_) == _institution_id(user)


def may_watch_round(user, round_) -> bool:
    """Progress, agreement, consensus and every label of a round: its managers, the coordinators of the
    institutions taking part, and researchers who may see its SAE. Never a rater (anchoring)."""
    role = role_of(user)
    if may_manage_round(user, round_):
        return True
    if role == Role.COORDINATOR:
        return round_.institutions.filter(pk=_institution_id(user)).exists()
    if role == Role.RESEARCHER:
        return may_see_sae(user, round_.sae)
    return False


def is_rater_in_round(user, round_) -> bool:
    return can_label(user) and round_.assignments.filter(rater_id=user.pk).exists()


def may_see_round_distribution(user, round_) -> bool:
    """The anonymised label distribution and rationales: its raters once the round is revealed; the
    people who watch it once it is closed."""
    if round_.status == "revealed" and is_rater_in_round(user, round_):
        return True
    return round_.status in ("closed", "revealed") and may_watch_round(user, round_)


def may_discuss_round(user, round_) -> bool:
    """Calibration discussion: after reveal, the round's raters and its managers and coordinators."""
    if round_.status != "revealed":
        return False
    if is_rater_in_round(user, round_):
        return True
    return role_of(user) in ROUND_MANAGERS and may_watch_round(user, round_)


def may_adjudicate_latent(user, latent) -> bool:
    return can_adjudicate(user) and may_see_sae(user, latent.sae)


def may_read_latent_labels(user, latent) -> bool:
    return can_read_labels(user) and may_see_sae(user, latent.sae)


class RolePermission(BasePermission):
    """DRF permission: safe methods need any role, writes need one of `write_roles`."""

    read_roles: frozenset[str] = frozenset(Role.values)
    write_roles: frozenset[str] = frozenset()
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        roles = self.read_roles if request.method in ("GET", "HEAD", "OPTIONS") else self.write_roles
        return has_role(request.user, roles)


def role_permission(*, read: frozenset[str] | set[str] | None = None,
                    write: frozenset[str] | set[str] = frozenset()) -> type[RolePermission]:
    """Build a DRF permission class for the given read and write roles."""
    return type(
        "RolePermissionFor",
        (RolePermission,),
        {"read_roles": frozenset(read if read is not None else Role.values), "write_roles": frozenset(write)},
    )
