"""The broker seen from the job services: send a job's message by name, ask whether the broker answers,
and look for a job's message on it (so that the sweeper re-sends only what was really lost)."""

from __future__ import annotations

import logging
import uuid as uuid_module
from pathlib import Path

from celery import current_app

logger = logging.getLogger(__name__)
RUN_JOB_TASK = "inference.run_job"


class BrokerUnavailable(Exception):
    """The broker did not answer: nothing can be handed to the workers now."""


def broker_check() -> None:
    """Raise BrokerUnavailable unless the broker accepts a connection (within ~2 s)."""
    if current_app.conf.task_always_eager:
        return
    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as error:  # noqa: BLE001 - kombu raises transport-specific errors
        raise BrokerUnavailable(f"the job queue is not reachable: {error}") from None


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


def jobs_on_broker(job_uuids: list[str], *, queues: tuple[str, ...] = ("cpu", "gpu")) -> set[str] | None:
    """The UUIDs among `job_uuids` whose message waits on, or is reserved from, the broker; None when
    this transport cannot be inspected (the sweeper then re-sends, and a duplicate is dropped)."""
    if not job_uuids:
        return set()
    with current_app.connection_for_read() as connection:
        transport = connection.transport.driver_type
        if transport == "redis":
            client = connection.default_channel.client
            raw: list[bytes] = []
            for queue in queues:
                for key in client.keys(f"{queue}*"):
                    if client.type(key) == b"list":
                        raw.extend(client.lrange(key, 0, -1))
            raw.extend(client.hvals("unacked"))
            blob = b"\n".join(raw)
            return {u for u in job_uuids if f"job-{u}".encode() in blob}
        if transport == "filesystem":
            folder = Path(connection.transport_options.get("data_folder_in", ""))
            found: set[str] = set()
            for path in folder.glob("*.msg") if folder.is_dir() else ():
                try:
                    text = path.read_text(errors="replace")
                except OSError:
                    continue
                found.update(u for u in job_uuids if f"job-{u}" in text)
            return found
    return None
