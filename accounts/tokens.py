"""Personal API tokens: create (the secret is returned once), revoke, and authenticate by the secret's hash."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .models import ApiToken

# A use updates last_used_at at most this often, so a busy script does not write on every request.
LAST_USED_RESOLUTION_SECONDS = 60


def api_token_create(*, user, name: str, ip: str | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`; returns the row and the secret, which is never stored nor shown again."""
    name = name.strip()
    if not name:
        raise ValueError("Give the token a name (what script or machine uses it).")
    secret = ApiToken.PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], key_hash=ApiToken.digest(secret), hint=secret[: len(ApiToken.PREFIX) + 4]
        )
        audit_record(actor=user, action="api_token.create", obj=token, payload={"name": token.name}, ip=ip)
    return token, secret


def api_token_revoke(*, token: ApiToken, by, ip: str | None = None) -> ApiToken:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            audit_record(actor=by, action="api_token.revoke", obj=token, payload={"name": token.name}, ip=ip)
    token.refresh_from_db()
    return token


def api_token_authenticate(*, secret: str, ip: str | None = None) -> ApiToken | None:
    """The active token with this secret (its user active too), its last use recorded; None otherwise."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=ApiToken.digest(secret), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= LAST_USED_RESOLUTION_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        # Audited once per resolution window, not per request: enough to see which token was used when.
        audit_record(actor=token.user, action="api_token.use", obj=token, ip=ip)
    return token
