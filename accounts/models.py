"""Institutions, user profiles with roles and pseudonyms, and the append-only audit log."""
from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    PHYSICIAN = "physician", "Physician"
    SENIOR = "senior", "Senior physician"
    COORDINATOR = "coordinator", "Coordinator"
    RESEARCHER = "researcher", "Researcher"
    ADMIN = "admin", "Administrator"


class Institution(models.Model):
    name = models.CharField(max_length=200, unique=True)
    code = models.SlugField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def new_pseudonym() -> str:
    """A stable random rater pseudonym; exports never carry names."""
    return f"R-{secrets.token_hex(5)}"


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="members")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.PHYSICIAN)
    specialty = models.CharField(max_length=120, blank=True)
    years_in_practice = models.PositiveSmallIntegerField(null=True, blank=True)
    pseudonym = models.CharField(max_length=20, unique=True, default=new_pseudonym, editable=False)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.username} ({self.get_role_display()}, {self.institution.code})"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: ARG002 - the log is append-only
        raise PermissionError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class AuditEvent(models.Model):
    # PROTECT: a user who acted is deactivated, never deleted, so the log keeps its actors.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise PermissionError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")
