"""Celery tasks of the annotation app (thin: the work is in services.statistics_jobs)."""

from celery import shared_task

TASK_NAME = "annotation.compute_round_statistics"
SWEEP_TASK_NAME = "annotation.sweep_round_statistics"

# acks_late + reject_on_worker_lost (settings): a killed pool child's message comes back to its node at once;
# the lease and the sweeper (beat) cover a whole worker lost and a message the broker lost.


@shared_task(name=TASK_NAME, bind=True, acks_late=True, ignore_result=True)
def compute_round_statistics_task(self, round_id: int, token: str) -> str:
    """Compute and write one closed round's statistics, on the `cpu` queue, under a lease."""
    from django.db import close_old_connections

    from .services.statistics_jobs import round_statistics_run

    close_old_connections()
    return round_statistics_run(round_id=round_id, token=token, node=self.request.hostname)


@shared_task(name=SWEEP_TASK_NAME, ignore_result=True)
def sweep_round_statistics_task() -> dict[str, int]:
    """The periodic reaper of round statistics (Celery beat, every JOB_SWEEP_SECONDS)."""
    from django.db import close_old_connections

    from .services.statistics_jobs import round_statistics_sweep

    close_old_connections()
    return round_statistics_sweep()
