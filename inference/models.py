"""Jobs: one row per unit of background work, with its progress, outcome and cost."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Job(models.Model):
    class Kind(models.TextChoices):
        IMPORT_CORPUS = "import_corpus", "Import corpus"
        CACHE_ACTIVATIONS = "cache_activations", "Cache activations"
        TRAIN_SAE = "train_sae", "Train SAE"
        MINE_LATENTS = "mine_latents", "Mine latents"
        DRIFT_AUDIT = "drift_audit", "Drift audit"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=30, choices=Kind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=10, default="cpu")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    message = models.TextField(blank=True)
    log_tail = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    checkpoint_uri = models.CharField(max_length=500, blank=True)
    device = models.CharField(max_length=40, blank=True)
    gpu_seconds = models.FloatField(default=0.0)
    energy_kwh = models.FloatField(default=0.0)
    co2_kg = models.FloatField(default=0.0)
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="job_progress_0_1"),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} {self.kind} {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINAL_STATUSES
