"""The message broker seen from any app that queues work: does it answer, and does it still hold a message?

Both apps that send Celery work (inference's jobs, annotation's round statistics) ask here before they
write anything (a broker that does not answer is a clean refusal, 503) and their sweepers ask here
before re-sending a queued piece of work (so that a message merely waiting behind others is not sent
twice). Messages are found by a marker their task id carries (`job-<uuid>`, `round-statistics-<token>`).
"""

from __future__ import annotations

from pathlib import Path

from celery import current_app

QUEUES = ("cpu", "gpu")


class BrokerUnavailable(Exception):
    """The broker did not answer: nothing can be handed to the workers now."""


def broker_check() -> None:
    """Raise BrokerUnavailable unless the broker accepts a connection (within ~2 s, one try)."""
    if current_app.conf.task_always_eager:
        return
    try:
        with current_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as error:  # noqa: BLE001 - kombu raises transport-specific errors
        raise BrokerUnavailable(f"the job queue is not reachable: {error}") from None


def markers_on_broker(
    markers: list[str], *, queues: tuple[str, ...] = QUEUES, reserved_after: float | None = None
) -> set[str] | None:
    """The markers among `markers` that some message waiting on, or reserved from, the broker carries in
    its task id; None when this transport cannot be inspected (the caller then re-sends, and the
    duplicate is dropped by its claim). Raises when the broker does not answer.

    `reserved_after` (a Unix time): on Redis, a reservation (`unacked`) handed out before it does not
    count. A caller that asks only about work still queued (never started) passes now − its grace: such a
    reservation belongs to a worker that prefetched the message and died whole, and would otherwise hold
    the work until the visibility timeout (an hour)."""
    if not markers:
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
            return {marker for marker in markers if marker.encode() in blob}
        if transport == "filesystem":
            folder = Path(connection.transport_options.get("data_folder_in", ""))
            found: set[str] = set()
            for path in folder.glob("*.msg") if folder.is_dir() else ():
                try:
                    text = path.read_text(errors="replace")
                except OSError:
                    continue
                found.update(marker for marker in markers if marker in text)
            return found
    return None


def _reservations(channel, *, reserved_after: float | None) -> list[bytes]:
    """The messages Redis holds as reserved by some worker (kombu's `unacked` hash), without those handed
    out before `reserved_after` (kombu's `unacked_index` sorted set scores each delivery tag with the
    time it was handed out)."""
    client = channel.client
    reserved = client.hgetall(channel.unacked_key)
    if reserved_after is None:
        return list(reserved.values())
    delivered = dict(client.zrange(channel.unacked_index_key, 0, -1, withscores=True))
    return [payload for tag, payload in reserved.items() if delivered.get(tag, reserved_after) >= reserved_after]
