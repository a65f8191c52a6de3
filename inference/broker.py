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


def jobs_on_broker(
    job_uuids: list[str], *, queues: tuple[str, ...] = ("cpu", "gpu"), reserved_after: float | None = None
) -> set[str] | None:
    """The UUIDs among `job_uuids` whose message waits on, or is reserved from, the broker; None when
    this transport cannot be inspected (the sweeper then re-sends, and a duplicate is dropped).

    `reserved_after` (a Unix time): on Redis, a reservation (`unacked`) delivered before it does not
    count. The sweeper asks only about jobs still `queued`, so such a message was taken by a worker that
    never started it, most likely one killed whole with the message prefetched: without this it would
    wait out the visibility timeout (an hour)."""
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
            raw.extend(_reservations(connection.default_channel, reserved_after=reserved_after))
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


def _reservations(channel, *, reserved_after: float | None) -> list[bytes]:
    """The messages Redis holds as reserved by some worker (kombu's `unacked` hash), without those
    delivered before `reserved_after` (kombu's `unacked_index` sorted set scores each delivery tag with
    the time it was handed out)."""
    client = channel.client
    reserved = client.hgetall(channel.unacked_key)
    if reserved_after is None:
        return list(reserved.values())
    delivered = dict(client.zrange(channel.unacked_index_key, 0, -1, withscores=True))
    return [payload for tag, payload in reserved.items() if delivered.get(tag, reserved_after) >= reserved_after]
