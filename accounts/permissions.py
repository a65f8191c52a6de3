"""Roles and the institution rule every app builds its access policy on.

Each app keeps one module of queryset functions, one per resource and direction (features/access.py,
annotation/access.py; jobs here): views, the API, exports, job launchers and the admin all ask those.
docs/access.md has the whole table."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from rest_framework import serializers
from rest_framework.permissions import BasePermission

from .models import Institution, Role

# Clinicians (Role.CLINICIAN) are in none of these sets: they explain notes and read what revealed rounds
# concluded there, and nothing else of the rounds (docs/access.md).
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
    return queryset.filter(Q(**{f"{prefix}institution__isnull": True}) | Q(**{f"{prefix}institution": institution}))


def may_see_corpus(user, corpus) -> bool:
    role = role_of(user)
    if role is None:
        return False
    return (
        role == Role.ADMIN
        or corpus.institution_id is None
        or corpus.institution_id == getattr(institution_of(user), "pk", None)
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


# Rounds, labels, adjudication and their blind rule live in annotation/access.py; corpora, SAEs and what
# derives from them in features/access.py; jobs here (jobs_visible_to). docs/access.md has the table.


class RolePermission(BasePermission):
    """DRF permission: safe methods need any role, writes need one of `write_roles`."""

    read_roles: frozenset[str] = frozenset(Role.values)
    write_roles: frozenset[str] = frozenset()
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        roles = self.read_roles if request.method in ("GET", "HEAD", "OPTIONS") else self.write_roles
        return has_role(request.user, roles)


def role_permission(
    *, read: frozenset[str] | set[str] | None = None, write: frozenset[str] | set[str] = frozenset()
) -> type[RolePermission]:
    """Build a DRF permission class for the given read and write roles."""
    return type(
        "RolePermissionFor",
        (RolePermission,),
        {"read_roles": frozenset(read if read is not None else Role.values), "write_roles": frozenset(write)},
    )


class _UserScoped:
    """A related field whose rows come from `scope(user)`, an access function: a row outside it gets
    the same "does not exist" error as an id that was never created, so a foreign id reveals nothing."""

    def __init__(self, *, scope, **kwargs):
        self.scope = scope
        # An empty queryset of the right model, so that the OpenAPI schema knows the field's type.
        kwargs.setdefault("queryset", scope(AnonymousUser()))
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return self.scope(request.user if request is not None else AnonymousUser())


class UserScopedPrimaryKeyField(_UserScoped, serializers.PrimaryKeyRelatedField):
    pass


class UserScopedSlugField(_UserScoped, serializers.SlugRelatedField):
    pass
