"""Recording audit events: every write service calls `audit_record`."""
from __future__ import annotations

from typing import Any

from django.db import models

from .models import AuditEvent


def audit_record(*, actor, action: str, obj: models.Model | None = None, payload: dict[str, Any] | None = None,
                 ip: str | None = None) -> AuditEvent:
    actor = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        payload=payload or {},
        ip=ip,
    )
