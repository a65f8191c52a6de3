"""Shared piece of the job commands: run a job here with a terminal progress bar, or hand it to a worker."""

from __future__ import annotations

from django.core.management.base import CommandError
from tqdm import tqdm

from inference.models import Job
from inference.services import job_enqueue, job_run


def run_job_from_command(*, command, job: Job, enqueue: bool) -> Job:
    if enqueue:
        job_enqueue(job=job)
        command.stdout.write(f"job {job.pk} queued on '{job.queue}'; follow it at /api/v1/jobs/{job.pk}/")
        return job
    with tqdm(
        total=1000,
        desc=job.kind,
        unit="‰",
        file=command.stderr._out,
        leave=True,
        bar_format="{percentage:3.0f}%|{bar}| {elapsed}<{remaining} {desc}",
    ) as bar:

        def echo(fraction: float, message: str) -> None:
            bar.n = int(fraction * 1000)
            bar.set_description_str(message[:70], refresh=True)

        try:
            job = job_run(job_id=job.pk, echo=echo)
        except KeyboardInterrupt:  # job_run has marked the job cancelled: a worker never picks it up
            raise CommandError(f"job {job.pk} interrupted; it is cancelled and will not be re-sent") from None
    if job.status != Job.Status.SUCCEEDED:
        raise CommandError(f"job {job.pk} {job.status}: {job.message}")
    return job
