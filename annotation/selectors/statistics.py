"""Whether the statistics of a round, or of every round behind a page, are ready: one answer for every door.

A closed round's agreement, reliability, round consensus and the SAE-wide consensus and routing are
computed by a `cpu` job after the round closes (docs/round-statistics.md). Until that job ends (`queued`,
`running`), or after it failed (`failed`), whatever a page, an API answer or an export shows of them is
missing or from an earlier computation. Every door that shows statistics or consensus asks here and says
so: pages with a banner (`annotation/_statistics_notice.html`), APIs with the `X-Statistics-Status`
header and a `statistics` field, the per-latent export with a refusal.

`round_statistics_state` answers for one round, `rounds_statistics_state` for the rounds behind a scope
(an SAE, a latent's SAE, an export). Statistics exist only for closed and revealed rounds: a draft or open
round says `none`. What the job's message says (it carries α when done) is shown only to those who may
read the round's content; everyone else sees the status and the progress.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet

from .. import access
from ..models import Round

Status = Round.StatisticsStatus
PENDING = (Status.QUEUED, Status.RUNNING)
# Statuses in which a round has statistics at all (its labels are frozen).
WITH_STATISTICS = (Round.Status.CLOSED, Round.Status.REVEALED)
NAMED_ROUNDS = 5  # a notice names this many rounds, then counts the others


class _StatusFlags:
    """`pending` and `failed` from a `status` field (shared by the per-round and per-door states)."""

    status: str

    @property
    def pending(self) -> bool:
        return self.status in PENDING

    @property
    def failed(self) -> bool:
        return self.status == Status.FAILED


@dataclass(frozen=True)
class RoundStatisticsState(_StatusFlags):
    """One round's statistics job as a viewer may see it (`name` blank when they may not read the round)."""

    round_id: int
    name: str
    status: str
    progress: float
    message: str = ""
    updated_at: datetime | None = None
    manageable: bool = False  # the viewer may press "Recompute statistics"

    def describe(self) -> str:
        name = f"'{self.name}'" if self.name else "a round you do not follow"
        if self.pending:
            return f"{name} ({'queued' if self.status == Status.QUEUED else f'{self.progress:.0%}'})"
        reason = self.message.removeprefix("failed: ")
        return f"{name} (failed{f': {reason}' if reason else ''})"

    def as_json(self) -> dict:
        return {
            "round": self.round_id if self.name else None,
            "name": self.name,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
        }


@dataclass(frozen=True)
class StatisticsState(_StatusFlags):
    """The statistics behind one door: `done` when every round behind it is done, `queued`/`running` when
    any is still computing, `failed` when none computes but one failed, `none` when no round has any.
    `rounds` holds the rounds that are not done (pending or failed)."""

    status: str
    progress: float = 0.0
    message: str = ""
    updated_at: datetime | None = None
    rounds: tuple[RoundStatisticsState, ...] = field(default_factory=tuple)

    @property
    def incomplete(self) -> bool:
        """Pending or failed: what the door shows of the statistics is missing or stale."""
        return self.pending or self.failed

    @property
    def recomputable(self) -> tuple[RoundStatisticsState, ...]:
        """The failed rounds the viewer may recompute (the banner gives each a Recompute button)."""
        return tuple(state for state in self.rounds if state.failed and state.manageable)

    def notice(self) -> str:
        """One sentence for a banner, a 409 or a header-reading client; blank when nothing is missing."""
        if not self.incomplete:
            return ""
        shown = [state for state in self.rounds if state.pending == self.pending][:NAMED_ROUNDS]
        others = len([state for state in self.rounds if state.pending == self.pending]) - len(shown)
        names = ", ".join(state.describe() for state in shown) + (
            f" and {others} other round{'s' if others > 1 else ''}" if others > 0 else ""
        )
        if self.pending:
            return (
                f"Statistics still computing for {names}: agreement and consensus shown here are missing or "
                "from an earlier computation until the job ends."
            )
        return (
            f"Statistics failed for {names}: agreement and consensus shown here are missing or from an earlier "
            "computation until a coordinator recomputes them."
        )

    def as_json(self) -> dict:
        """The `statistics` field of API answers (docs/interfaces.md)."""
        return {
            "status": self.status,
            "pending": self.pending,
            "progress": self.progress,
            "message": self.message or self.notice(),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "rounds": [state.as_json() for state in self.rounds],
        }


NO_STATISTICS = StatisticsState(status=Status.NONE)


def round_statistics_status(round_: Round) -> str:
    """The round's statistics status, `none` for a draft or open round (no statistics belong to it yet)."""
    return round_.statistics_status if round_.status in WITH_STATISTICS else Status.NONE


def round_statistics_state(*, round: Round, user=None) -> StatisticsState:  # noqa: A002
    """One round's statistics; the job's message only for those who may read its content (`user` None:
    the operator, who reads everything)."""
    status = round_statistics_status(round)
    if status == Status.NONE:
        return NO_STATISTICS
    content = user is None or access.round_content_readable(user, round)
    message = round.statistics_message if content else ""
    progress = 1.0 if status == Status.DONE else round.statistics_progress
    rounds = ()
    if status != Status.DONE:
        manageable = user is not None and access.may_manage_round(user, round)
        rounds = (
            RoundStatisticsState(
                round_id=round.pk,
                name=round.name,
                status=status,
                progress=progress,
                message=message,
                updated_at=round.statistics_updated_at,
                manageable=manageable,
            ),
        )
    return StatisticsState(
        status=status, progress=progress, message=message, updated_at=round.statistics_updated_at, rounds=rounds
    )


def rounds_statistics_state(*, rounds: QuerySet[Round], user=None) -> StatisticsState:
    """The statistics behind a scope of rounds (the caller picks them: an SAE's, an export's): pending if any
    closed round among them is, else failed if any failed, else done if any is done, else none. Rounds the
    viewer may not read count, unnamed (an SAE-wide consensus pools them too)."""
    with_statistics = rounds.filter(status__in=WITH_STATISTICS)
    not_done = list(
        with_statistics.exclude(statistics_status__in=[Status.DONE, Status.NONE])
        .order_by("pk")
        .values("pk", "name", "statistics_status", "statistics_progress", "statistics_message", "statistics_updated_at")
    )
    if not not_done:
        done = with_statistics.filter(statistics_status=Status.DONE).exists()
        return StatisticsState(status=Status.DONE, progress=1.0) if done else NO_STATISTICS
    ids = [row["pk"] for row in not_done]
    readable = _ids(access.rounds_readable(user), ids) if user is not None else set(ids)
    watched = _ids(access.rounds_watchable(user), ids) if user is not None else set(ids)
    manageable = _ids(access.rounds_writable(user), ids) if user is not None else set()
    states = tuple(
        RoundStatisticsState(
            round_id=row["pk"],
            name=row["name"] if row["pk"] in readable else "",
            status=row["statistics_status"],
            progress=row["statistics_progress"],
            message=row["statistics_message"] if row["pk"] in watched else "",
            updated_at=row["statistics_updated_at"],
            manageable=row["pk"] in manageable,
        )
        for row in not_done
    )
    pending = [state for state in states if state.pending]
    if pending:
        status = Status.RUNNING if any(state.status == Status.RUNNING for state in pending) else Status.QUEUED
        progress = sum(state.progress for state in pending) / len(pending)
    else:
        status, progress = Status.FAILED, 0.0
    updated = [state.updated_at for state in states if state.updated_at is not None]
    return StatisticsState(status=status, progress=progress, updated_at=max(updated, default=None), rounds=states)


def sae_statistics_state(*, sae_ids: Iterable[int] | QuerySet, user=None) -> StatisticsState:
    """The statistics behind an SAE-wide consensus (a latent page, the adjudication queue, the latent
    browser): every closed round on those SAEs feeds it."""
    return rounds_statistics_state(rounds=Round.objects.filter(sae_id__in=sae_ids), user=user)


def _ids(rounds: QuerySet[Round], ids: list[int]) -> set[int]:
    return set(rounds.filter(pk__in=ids).values_list("pk", flat=True))
