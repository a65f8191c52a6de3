"""Login lockout with two limits (django-axes handler).

AXES_LOCKOUT_PARAMETERS is ``[["username", "ip_address"], "ip_address"]``: AXES_FAILURE_LIMIT wrong
passwords for one username from one address lock that pair; AXES_IP_FAILURE_LIMIT (higher) wrong
passwords from one address, across any usernames, lock that address, so it cannot spray a password
over many accounts. axes itself compares every parameter against one limit, hence this handler."""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from django.conf import settings
from django.db.models import Sum


class TwoLimitLockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials: dict | None = None) -> int:
        counts = [
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        ]
        pair, address = counts[0], max(counts[1:], default=0)
        if address >= settings.AXES_IP_FAILURE_LIMIT:
            return max(pair, get_failure_limit(request, credentials))
        return pair

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        """A successful log-in clears that username's failures from that address, not the address's
        count across usernames (else one valid account would reset a spray)."""
        deleted, _ = self.filter_user_attempts(request, credentials)[0].delete()
        return deleted
