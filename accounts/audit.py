"""Recording audit events (every write service calls `audit_record`) and verifying their hash chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from .models import GENESIS_HASH, AuditEvent
from .redaction import without_server_paths


def audit_record(
    *, actor, action: str, obj: models.Model | None = None, payload: dict[str, Any] | None = None, ip: str | None = None
) -> AuditEvent:
    actor = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=actor,
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        payload=without_server_paths(payload or {}),  # upload and artifact paths as public paths
        ip=ip,
    )


@dataclass(frozen=True)
class ChainCheck:
    n_verified: int
    head_hash: str
    broken_at: int | None = None
    reason: str = ""


def audit_chain_verify() -> ChainCheck:
    """Recompute the chain row by row (in id order, streamed); stop at the first row that does not match."""
    expected_previous = GENESIS_HASH
    n = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.previous_hash != expected_previous:
            return ChainCheck(
                n,
                expected_previous,
                event.pk,
                "its link to the previous row is broken: a row before it was removed or altered",
            )
        if event.compute_hash() != event.hash:
            return ChainCheck(n, expected_previous, event.pk, "its content does not match its hash")
        expected_previous = event.hash
        n += 1
    return ChainCheck(n, expected_previous)
