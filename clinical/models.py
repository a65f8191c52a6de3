"""Notes a user asked to keep after explaining them; nothing is stored unless asked. A kept note is
PHI-scrubbed, seen and deleted only by its owner, deleted with its owner, and purged after
CLINICAL_SAVED_NOTE_DAYS days."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from features.models import SAE


class SavedNote(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sae = models.ForeignKey(SAE, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    sha256 = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
