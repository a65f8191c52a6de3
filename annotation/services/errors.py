"""The two ways a service refuses: a round whose state forbids the action, and input that cannot be used."""

from __future__ import annotations


class RoundStateError(Exception):
    """The round's state does not allow the action (closing a draft, labelling in a closed round,
    revealing a production round). APIs answer 409 Conflict; pages show the message."""


class InvalidInput(ValueError):
    """Input that no state of the world would make valid (an unknown concept, a short rationale).
    APIs answer 400; pages show the message beside the form."""
