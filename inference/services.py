"""Jobs: create and enqueue on commit, run with progress reporting, record success or failure."""
from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.audit import audit_record

from .models import Job

logger = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
Work = Callable[[Job, Progress], dict[str, Any]]

QUEUE_OF_KIND = {
    Job.Kind.IMPORT_CORPUS: "cpu",
    Job.Kind.CACHE_ACTIVATIONS: "gpu",
    Job.Kind.TRAIN_SAE: "gpu",
    Job.Kind.MINE_LATENTS: "gpu",
}


class JobCancelled(Exception):
    """Raised inside a running job when someone cancelled it."""


def _enqueue(job: Job) -> None:
    from . import tasks  # tasks import this module; import late to keep one direction at load time

    task = tasks.TASK_OF_KIND[job.kind]
    task.apply_async(args=[job.pk], queue=job.queue)


def job_create(*, kind: str, parameters: dict[str, Any], by=None, enqueue: bool = True) -> Job:
    """Create a Job row and, once the transaction commits, hand it to a worker."""
    with transaction.atomic():
        job = Job.objects.create(kind=kind, parameters=parameters, queue=QUEUE_OF_KIND[kind],
                                 created_by=by if getattr(by, "is_authenticated", False) else None)
        audit_record(actor=by, action=f"job.create.{kind}", obj=job, payload=parameters)
        if enqueue:
            transaction.on_commit(lambda: _enqueue(job))
    return job


def job_cancel(*, job: Job, by) -> Job:
    updated = Job.objects.filter(pk=job.pk, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]).update(
        status=Job.Status.CANCELLED, message="cancelled", finished_at=timezone.now()
    )
    if not updated:
        raise ValueError(f"job {job.pk} has already finished ({job.status})")
    audit_record(actor=by, action="job.cancel", obj=job)
    job.refresh_from_db()
    return job


class JobReporter:
    """The progress callback handed to pure code; writes to the Job row at most every `interval` seconds."""

    def __init__(self, job_id: int, *, interval: float = 0.5, echo: Progress | None = None) -> None:
        self.job_id = job_id
        self.interval = interval
        self.echo = echo
        self._last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.echo is not None:
            self.echo(fraction, message)
        now = time.monotonic()
        if now - self._last < self.interval and fraction < 1.0:
            return
        self._last = now
        updated = Job.objects.filter(pk=self.job_id, status=Job.Status.RUNNING).update(
            progress=fraction, message=message[:1000]
        )
        if not updated:
            raise JobCancelled(f"job {self.job_id} is no longer running")

    def record(self, **fields: Any) -> None:
        Job.objects.filter(pk=self.job_id).update(**fields)


def job_run(*, job_id: int, work: Work, echo: Progress | None = None) -> Job:
    """Run `work` for a job: running → succeeded | failed. Idempotent: a finished job is left alone,
    so a redelivered message does no harm; an unfinished one runs again and resumes from its checkpoint."""
    job = Job.objects.get(pk=job_id)
    if job.is_finished:
        return job
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING, started_at=timezone.now(),
                                         attempts=F("attempts") + 1, message="started")
    reporter = JobReporter(job_id, echo=echo)
    try:
        result = work(job, reporter)
    except JobCancelled:
        logger.info("job %s cancelled", job_id)
    except Exception as error:  # noqa: BLE001 - every failure is recorded on the job, then logged
        logger.exception("job %s failed", job_id)
        Job.objects.filter(pk=job_id).update(
            status=Job.Status.FAILED, message=f"{type(error).__name__}: {error}"[:2000],
            log_tail=traceback.format_exc()[-8000:], finished_at=timezone.now(),
        )
        audit_record(actor=job.created_by, action=f"job.fail.{job.kind}", obj=job, payload={"error": str(error)})
    else:
        Job.objects.filter(pk=job_id).update(status=Job.Status.SUCCEEDED, progress=1.0, result=result or {},
                                             message="done", finished_at=timezone.now())
        audit_record(actor=job.created_by, action=f"job.succeed.{job.kind}", obj=job, payload=result or {})
    job.refresh_from_db()
    return job


def upload_store(*, uploaded, prefix: str) -> Path:
    """Keep an uploaded file under ARTIFACT_ROOT/uploads so that any worker can read it."""
    directory = Path(settings.ARTIFACT_ROOT) / "uploads" / f"{prefix}-{timezone.now():%Y%m%d%H%M%S%f}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / Path(uploaded.name).name
    with path.open("wb") as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)
    return path


# Job bodies: thin adapters from a Job's parameters to one service call each.

def import_corpus_work(job: Job, progress: Progress) -> dict[str, Any]:
    from accounts.models import Institution
    from features.services import corpus_import

    params = job.parameters
    institution = Institution.objects.get(code=params["institution"]) if params.get("institution") else None
    corpus = corpus_import(
        path=Path(params["path"]), name=params["name"], by=job.created_by, scrub=params.get("scrub_phi", False),
        phi_names=params.get("phi_names", []), institution=institution,
        description=params.get("description", ""), progress=progress,
    )
    return {"corpus_id": corpus.pk, "n_snippets": corpus.n_snippets}


WORK_OF_KIND: dict[str, Work] = {
    Job.Kind.IMPORT_CORPUS: import_corpus_work,
}
