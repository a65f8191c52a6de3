"""The rate at which one user may explain notes: each explanation runs the host model on the web process's
CPU, so the API and the page's POST share a budget of settings.CLINICAL_EXPLAIN_RATE per user."""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling


class ExplainThrottle(throttling.UserRateThrottle):
    """Per authenticated user (per address for anyone else), scope `explain`."""

    scope = "explain"

    def get_rate(self) -> str:
        return settings.CLINICAL_EXPLAIN_RATE
