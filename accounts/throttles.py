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
