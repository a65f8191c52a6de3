"""Celery tasks: each takes a job id and runs that job's body through `job_run`."""
from celery import shared_task

from .models import Job
from .services import WORK_OF_KIND, job_run

# acks_late + reject_on_worker_lost (settings): a killed worker's message is redelivered.


@shared_task(name="inference.tasks.import_corpus_task")
def import_corpus_task(job_id: int) -> None:
    job_run(job_id=job_id, work=WORK_OF_KIND[Job.Kind.IMPORT_CORPUS])


TASK_OF_KIND = {
    Job.Kind.IMPORT_CORPUS: import_corpus_task,
}
