"""Fixtures shared by the access matrices."""

from __future__ import annotations

import pytest
from rest_framework.views import APIView


@pytest.fixture
def no_throttles(monkeypatch):
    """The matrices send hundreds of requests per user; rate limits are tested on their own, not here."""
    monkeypatch.setattr(APIView, "get_throttles", lambda self: [])
