"""Institutions, user profiles with roles and pseudonyms, and the append-only audit log."""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone


class Role(models.TextChoices):
    PHYSICIAN = "physician", "Physician"
    SENIOR = "senior", "Senior physician"
    COORDINATOR = "coordinator", "Coordinator"
    RESEARCHER = "researcher", "Researcher"
    ADMIN = "admin", "Administrator"
    # Explains notes with labelled SAEs (issue 12); never a rater, reads no round, job or export.
    CLINICIAN = "clinician", "Clinician"


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

    def bulk_create(self, *args, **kwargs):
        raise PermissionError("Audit events are chained one by one: use create().")


GENESIS_HASH = "0" * 64
# One lock for every writer of the log: the chain needs each row to see the previous one committed.
_CHAIN_LOCK_KEY = 0x636F6E636F7264  # "concord"


def audit_event_hash(
    *,
    previous_hash: str,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: str,
    payload,
    ip: str | None,
    created_at,
) -> str:
    """sha256 over the previous row's hash and this row's content, in a canonical JSON form that
    survives a round trip through PostgreSQL's jsonb (sorted keys, no whitespace)."""
    content = json.dumps(
        [
            previous_hash,
            actor_id,
            action,
            object_type,
            object_id,
            payload,
            ip,
            created_at.astimezone(datetime.UTC).isoformat(),
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


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
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    # The hash chain: each row holds the previous row's hash and its own; `verify_audit` recomputes them.
    previous_hash = models.CharField(max_length=64, editable=False, default="")
    hash = models.CharField(max_length=64, editable=False, default="")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise PermissionError("Audit events are append-only: they cannot be updated.")
        with transaction.atomic(using=kwargs.get("using")):
            if connection.vendor == "postgresql":
                # Held to the end of the transaction, so the next writer reads this row as the last one.
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
            last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
            self.previous_hash = last or GENESIS_HASH
            self.created_at = timezone.now()
            self.payload = json.loads(json.dumps(self.payload or {}, default=str))
            self.hash = self.compute_hash()
            super().save(*args, **kwargs)

    def compute_hash(self) -> str:
        return audit_event_hash(
            previous_hash=self.previous_hash,
            actor_id=self.actor_id,
            action=self.action,
            object_type=self.object_type,
            object_id=self.object_id,
            payload=self.payload,
            ip=self.ip,
            created_at=self.created_at,
        )

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class ApiToken(models.Model):
    """A personal API token for scripts. Only the sha256 of the secret is kept; the secret is shown once."""

    PREFIX = "cnc_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters of the secret, so its owner can tell tokens apart; not enough to use one.
    hint = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…, {self.user})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def digest(secret: str) -> str:
        return hashlib.sha256(secret.encode("utf-8")).hexdigest()
