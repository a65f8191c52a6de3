"""The broker seen from the job services: send a job's message by name, ask whether the broker answers,
and look for a job's message on it (so that the sweeper re-sends only what was really lost). The generic
check and look-up live in accounts/broker.py, shared with annotation's round statistics."""

from __future__ import annotations

import logging
import uuid as uuid_module

from celery import current_app

from accounts.broker import BrokerUnavailable, broker_check, markers_on_broker

logger = logging.getLogger(__name__)
RUN_JOB_TASK = "inference.run_job"
__all__ = ["BrokerUnavailable", "broker_check", "jobs_on_broker", "send_job", "task_id_for"]


def task_id_for(job_uuid) -> str:
    """Each message of a job carries the job's UUID in its task id, so it can be found on the broker."""
    return f"job-{job_uuid}-{uuid_module.uuid4().hex[:8]}"


def send_job(*, job_id: int, job_uuid, queue: str) -> None:
    current_app.send_task(
        RUN_JOB_TASK,
        args=[job_id],
        queue=queue,
        task_id=task_id_for(job_uuid),
        retry=True,
        retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5},
    )


def jobs_on_broker(
    job_uuids: list[str], *, queues: tuple[str, ...] = ("cpu", "gpu"), reserved_after: float | None = None
) -> set[str] | None:
    """The UUIDs among `job_uuids` whose message waits on, or is reserved from, the broker; None when
    this transport cannot be inspected (the sweeper then re-sends, and a duplicate is dropped).
    `reserved_after`: a Redis reservation handed out before it does not count (see markers_on_broker)."""
    found = markers_on_broker([f"job-{u}" for u in job_uuids], queues=queues, reserved_after=reserved_after)
    return None if found is None else {marker.removeprefix("job-") for marker in found}
