"""The ways a service refuses: a round whose state forbids the action, input that cannot be used, and a job
queue that does not answer."""

from __future__ import annotations


class RoundStateError(Exception):
    """The round's state does not allow the action (closing a draft, labelling in a closed round,
    revealing a production round). APIs answer 409 Conflict; pages show the message."""


class InvalidInput(ValueError):
    """Input that no state of the world would make valid (an unknown concept, a short rationale).
    APIs answer 400; pages show the message beside the form."""


class QueueUnavailable(Exception):
    """The job queue (the broker) did not answer, so nothing was changed: closing a round or recomputing its
    statistics is refused rather than left waiting. APIs answer 503; pages show the message."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "The job queue is not reachable right now, so nothing was changed. Try again in a minute; "
            "if it persists, tell the administrator."
        )
