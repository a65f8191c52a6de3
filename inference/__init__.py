"""Jobs on Celery workers (queues `gpu` and `cpu`), their progress and cost."""
