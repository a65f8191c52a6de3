"""Celery tasks: one runs a job by id (sent by name, see broker.py), one is the periodic sweeper."""

from celery import shared_task

from .progress import close_connections
from .services import job_run, jobs_sweep

# acks_late + reject_on_worker_lost (settings): a killed pool child's message comes back to its node at
# once and the job resumes from its checkpoint; the lease and the sweeper cover a whole worker lost.


@shared_task(name="inference.run_job", bind=True)
def run_job_task(self, job_id: int) -> None:
    close_connections()
    job_run(job_id=job_id, node=self.request.hostname)


@shared_task(name="inference.sweep_jobs", ignore_result=True)
def sweep_jobs_task() -> dict[str, int]:
    close_connections()
    return jobs_sweep()
