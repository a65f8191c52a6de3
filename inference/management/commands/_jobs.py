"""Shared pieces of the job commands: run a job here with a terminal progress bar, or enqueue it."""
from __future__ import annotations

from django.core.management.base import CommandError
from tqdm import tqdm

from inference.models import Job
from inference.services import WORK_OF_KIND, job_create, job_run


def run_job_from_command(*, command, kind: str, parameters: dict, enqueue: bool) -> Job:
    """Create the Job; run it in this process (progress bar on stderr) or hand it to the workers."""
    job = job_create(kind=kind, parameters=parameters, enqueue=enqueue)
    if enqueue:
        command.stdout.write(f"job {job.pk} queued on '{job.queue}'; follow it at /api/v1/jobs/{job.pk}/")
        return job
    with tqdm(total=1000, desc=kind, unit="‰", file=command.stderr._out, leave=True) as bar:
        def echo(fraction: float, message: str) -> None:
            bar.n = int(fraction * 1000)
            bar.set_postfix_str(message[:60], refresh=True)

        job = job_run(job_id=job.pk, work=WORK_OF_KIND[kind], echo=echo)
    if job.status != Job.Status.SUCCEEDED:
        raise CommandError(f"job {job.pk} {job.status}: {job.message}")
    return job
