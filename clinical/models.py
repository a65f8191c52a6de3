"""Notes a user asked to keep after explaining them; nothing is stored unless asked."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from features.models import SAE


class SavedNote(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    sae = models.ForeignKey(SAE, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    sha256 = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
