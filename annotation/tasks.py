"""Celery tasks of the annotation app (thin: the work is in services.statistics_jobs)."""

from celery import shared_task

TASK_NAME = "annotation.compute_round_statistics"


@shared_task(name=TASK_NAME, acks_late=True, ignore_result=True)
def compute_round_statistics_task(round_id: int, token: str) -> str:
    """Compute and write one closed round's statistics, on the `cpu` queue."""
    from .services.statistics_jobs import round_statistics_run

    return round_statistics_run(round_id=round_id, token=token)
