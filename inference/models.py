"""Jobs: one row per unit of background work, with its progress, outcome and cost."""

from __future__ import annotations

import uuid

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
        STEER = "steer", "Steering run"
        PROTECTED_SCAN = "protected_scan", "Protected-attribute scan"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    # Artifact and checkpoint folders are named by this, never by the primary key: two databases that
    # share one ARTIFACT_ROOT cannot collide.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
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
    device_seconds = models.FloatField(default=0.0)
    energy_method = models.CharField(max_length=12, blank=True, help_text="nvml, rapl or estimated")
    cost = models.FloatField(default=0.0)
    # The lease: the worker running the job ("node pid N") renews it by heartbeat; the sweeper re-sends
    # a job whose lease expired. sent_at: when its message last went to the broker.
    worker = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sweep = models.ForeignKey("Sweep", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
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

    @property
    def energy_method_label(self) -> str:
        """'measured (NVML)', 'measured (RAPL)' or 'estimated'; '—' before the job has run."""
        from .engine.accounting import method_label

        return method_label(self.energy_method) if self.energy_method else "—"


class Sweep(models.Model):
    """One request that trains an SAE per point of a grid (widths × k or L1) and mines each."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    activation_set = models.ForeignKey("features.ActivationSet", on_delete=models.PROTECT, related_name="sweeps")
    parameters = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="sweeps"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Sweep {self.pk} {self.name}"

    @property
    def group(self) -> str:
        """The SAEs' sweep_group."""
        return f"sweep-{self.uuid}"
