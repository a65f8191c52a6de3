"""API throttles whose rates are read from settings at request time (API_THROTTLE_*_RATE)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling


class AnonThrottle(throttling.AnonRateThrottle):
    """Per client address, for requests without credentials."""

    def get_rate(self) -> str:
        return settings.API_THROTTLE_ANON_RATE


class UserThrottle(throttling.UserRateThrottle):
    """Per authenticated user, whatever the address or token."""

    def get_rate(self) -> str:
        return settings.API_THROTTLE_USER_RATE


class FailedTokenThrottle(throttling.SimpleRateThrottle):
    """Wrong or revoked tokens, per client address: guessing tokens is throttled like anonymous access.

    Used from inside authentication, so it must not touch request.user."""

    scope = "failed_token"

    def get_rate(self) -> str:
        return settings.API_THROTTLE_ANON_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def client_address(request) -> str | None:
    """The client's address as the API throttles see it, for django-axes' login lockout too.

    REMOTE_ADDR unless NUM_PROXIES (trusted reverse proxies in front of Concord) is above 0; then the
    address that many hops from the right of X-Forwarded-For. A client sets X-Forwarded-For itself, so
    trusting it without a proxy that overwrites it would let every request claim a new address."""
    return throttling.BaseThrottle().get_ident(request) or request.META.get("REMOTE_ADDR")
