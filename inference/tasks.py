"""Celery tasks: each takes a job id and runs that job's body through `job_run`."""
from celery import shared_task

from .jobs import WORK_OF_KIND
from .models import Job
from .services import job_run

# acks_late + reject_on_worker_lost (settings): a killed worker's message is redelivered, and the job
# resumes from its last checkpoint.


@shared_task(name="inference.tasks.import_corpus_task")
def import_corpus_task(job_id: int) -> None:
    job_run(job_id=job_id, work=WORK_OF_KIND[Job.Kind.IMPORT_CORPUS])


@shared_task(name="inference.tasks.cache_activations_task")
def cache_activations_task(job_id: int) -> None:
    job_run(job_id=job_id, work=WORK_OF_KIND[Job.Kind.CACHE_ACTIVATIONS])


@shared_task(name="inference.tasks.train_sae_task")
def train_sae_task(job_id: int) -> None:
    job_run(job_id=job_id, work=WORK_OF_KIND[Job.Kind.TRAIN_SAE])


@shared_task(name="inference.tasks.mine_latents_task")
def mine_latents_task(job_id: int) -> None:
    job_run(job_id=job_id, work=WORK_OF_KIND[Job.Kind.MINE_LATENTS])


@shared_task(name="inference.tasks.drift_audit_task")
def drift_audit_task(job_id: int) -> None:
    job_run(job_id=job_id, work=WORK_OF_KIND[Job.Kind.DRIFT_AUDIT])


TASK_OF_KIND = {
    Job.Kind.IMPORT_CORPUS: import_corpus_task,
    Job.Kind.CACHE_ACTIVATIONS: cache_activations_task,
    Job.Kind.TRAIN_SAE: train_sae_task,
    Job.Kind.MINE_LATENTS: mine_latents_task,
    Job.Kind.DRIFT_AUDIT: drift_audit_task,
}
