"""Read paths for rounds: lists filtered by what the caller may see, progress, agreement, trend, reveal."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, Max, OuterRef, QuerySet

from accounts.models import Role

from .. import access
from ..models import (
    AgreementReport,
    Assignment,
    Comment,
    Consensus,
    DetectionResponse,
    Label,
    Round,
)


def round_list(*, user) -> QuerySet[Round]:
    """The rounds the user may see at all (annotation.access decides)."""
    return access.rounds_readable(user)


def assignment_list(*, user, round_id: int | None = None) -> QuerySet[Assignment]:
    """Only the caller's own assignments, never anyone else's."""
    assignments = access.assignments_readable(user).select_related("round", "latent")
    return assignments.filter(round_id=round_id) if round_id is not None else assignments


def _done_filter(round_: Round):
    """An assignment is done when it has a label, or for detection, the rater's answers for its latent."""
    if round_.kind == Round.Kind.DETECTION:
        return Exists(
            DetectionResponse.objects.filter(
                item__round_id=OuterRef("round_id"),
                item__latent_id=OuterRef("latent_id"),
                rater_id=OuterRef("rater_id"),
            )
        )
    return Exists(Label.objects.filter(assignment_id=OuterRef("pk")))


@dataclass(frozen=True)
class ProgressRow:
    name: str
    detail: str
    assigned: int
    done: int
    last_activity: datetime | None = None  # the rater's latest label or answer in the round

    @property
    def remaining(self) -> int:
        return self.assigned - self.done

    @property
    def share(self) -> float:
        return self.done / self.assigned if self.assigned else 0.0


@dataclass(frozen=True)
class RoundProgress:
    assigned: int
    done: int
    by_institution: list[ProgressRow]
    by_rater: list[ProgressRow]

    @property
    def remaining(self) -> int:
        return self.assigned - self.done

    @property
    def share(self) -> float:
        return self.done / self.assigned if self.assigned else 0.0


def round_progress(*, round: Round) -> RoundProgress:  # noqa: A002
    """Progress per institution and per rater (raters by pseudonym: progress pages never need names)."""
    rows = (
        round.assignments.annotate(done=_done_filter(round))
        .values(
            "rater__profile__pseudonym",
            "rater__profile__institution__code",
            "rater__profile__institution__name",
            "done",
        )
        .annotate(n=Count("pk"))
    )
    by_rater: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    by_institution: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        code = row["rater__profile__institution__code"] or ""
        rater_key = (row["rater__profile__pseudonym"] or "?", code)
        institution_key = (code or "?", row["rater__profile__institution__name"] or "")
        for key, table in ((rater_key, by_rater), (institution_key, by_institution)):
            table[key][0] += row["n"]
            table[key][1] += row["n"] if row["done"] else 0
    if round.kind == Round.Kind.DETECTION:
        activity = (
            DetectionResponse.objects.filter(item__round=round)
            .values("rater__profile__pseudonym")
            .annotate(last=Max("submitted_at"))
            .values_list("rater__profile__pseudonym", "last")
        )
    else:
        activity = (
            Label.objects.filter(assignment__round=round)
            .values("assignment__rater__profile__pseudonym")
            .annotate(last=Max("updated_at"))
            .values_list("assignment__rater__profile__pseudonym", "last")
        )
    last = dict(activity)
    return RoundProgress(
        assigned=sum(value[0] for value in by_rater.values()),
        done=sum(value[1] for value in by_rater.values()),
        by_institution=[ProgressRow(code, name, *value) for (code, name), value in sorted(by_institution.items())],
        by_rater=[
            ProgressRow(pseudonym, code, *value, last_activity=last.get(pseudonym))
            for (pseudonym, code), value in sorted(by_rater.items())
        ],
    )


def round_reports(*, round: Round) -> dict[str, AgreementReport]:  # noqa: A002
    """The round's agreement reports keyed "metric" or "metric:level"."""
    reports = {}
    for report in round.agreement_reports.all():
        reports[f"{report.metric}:{report.level}"] = report
        reports.setdefault(report.metric, report)
    return reports


@dataclass(frozen=True)
class TrendPoint:
    round_id: int
    name: str
    rubric_version: int
    alpha: float | None
    ci_low: float | None
    ci_high: float | None
    is_current: bool


def round_alpha_trend(*, round: Round, level: str = "nominal") -> list[TrendPoint]:  # noqa: A002
    """Nominal alpha along the calibration chain through `round`: its ancestors (parent links), the
    round itself, then its latest follow-up at each step."""
    chain: list[Round] = []
    node, seen = round, set()
    while node is not None and node.pk not in seen:
        seen.add(node.pk)
        chain.insert(0, node)
        node = node.parent
    node = round
    while True:
        # The follow-up that has labels, rather than a newer empty draft made beside it.
        follow_up = (
            node.follow_ups.exclude(pk__in=seen)
            .annotate(has_labels=Exists(Label.objects.filter(assignment__round_id=OuterRef("pk"))))
            .order_by("-has_labels", "-created_at")
            .first()
        )
        if follow_up is None:
            break
        seen.add(follow_up.pk)
        chain.append(follow_up)
        node = follow_up
    # A round's alpha appears once it is closed (blind until then), whichever round of the chain is asked.
    reports = {
        r.round_id: r
        for r in AgreementReport.objects.filter(
            round__in=chain, round__status__in=access.CONTENT_STATUSES, metric="krippendorff_alpha", level=level
        )
    }
    points = []
    for item in chain:
        report = reports.get(item.pk)
        points.append(
            TrendPoint(
                round_id=item.pk,
                name=item.name,
                rubric_version=item.rubric_version.version,
                alpha=report.value if report else None,
                ci_low=report.ci_low if report else None,
                ci_high=report.ci_high if report else None,
                is_current=item.pk == round.pk,
            )
        )
    return points


def round_latents_by_entropy(*, round: Round) -> QuerySet[Consensus]:  # noqa: A002
    """The round's consensus rows, most uncertain first."""
    return (
        Consensus.objects.of_round(round.pk).platform().select_related("latent").order_by("-entropy", "latent__index")
    )


@dataclass(frozen=True)
class RevealedLabel:
    pseudonym: str
    concept_code: str
    concept_name: str
    free_text: str
    confidence: int
    rationale: str


@dataclass(frozen=True)
class LatentDistribution:
    latent_id: int
    latent_index: int
    counts: list[tuple[str, str, int]]  # (code, name, n) most frequent first
    labels: list[RevealedLabel]
    comments: list[tuple[str, str, object]]  # (pseudonym, text, created_at)


def round_distribution(*, round: Round) -> list[LatentDistribution]:  # noqa: A002
    """Per latent, the anonymised distribution of first labels (hidden repeats left out) and rationales."""
    labels = (
        Label.objects.filter(assignment__round=round, assignment__is_repeat=False)
        .select_related("concept", "assignment__latent", "assignment__rater__profile")
        .order_by("assignment__latent__index", "concept__code", "pk")
    )
    comments = defaultdict(list)
    for comment in Comment.objects.filter(round=round).select_related("author__profile").order_by("created_at"):
        comments[comment.latent_id].append((_pseudonym(comment.author), comment.text, comment.created_at))
    grouped: dict[int, list[Label]] = defaultdict(list)
    index_of = {}
    for label in labels:
        grouped[label.assignment.latent_id].append(label)
        index_of[label.assignment.latent_id] = label.assignment.latent.index
    result = []
    for latent_id, items in grouped.items():
        counter: dict[tuple[str, str], int] = defaultdict(int)
        for label in items:
            counter[(label.concept.code, label.concept.name)] += 1
        counts = sorted(((code, name, n) for (code, name), n in counter.items()), key=lambda row: (-row[2], row[0]))
        result.append(
            LatentDistribution(
                latent_id=latent_id,
                latent_index=index_of[latent_id],
                counts=counts,
                labels=[
                    RevealedLabel(
                        _pseudonym(label.assignment.rater),
                        label.concept.code,
                        label.concept.name,
                        label.free_text,
                        label.confidence,
                        label.rationale,
                    )
                    for label in items
                ],
                comments=comments.get(latent_id, []),
            )
        )
    return sorted(result, key=lambda item: item.latent_index)


def _pseudonym(user) -> str:
    profile = getattr(user, "profile", None)
    if profile is None:
        return "admin"
    if profile.role in (Role.PHYSICIAN, Role.SENIOR):
        return profile.pseudonym
    return f"{profile.get_role_display()} {profile.pseudonym}"


def comment_list(*, round: Round, latent_id: int | None = None) -> QuerySet[Comment]:  # noqa: A002
    comments = Comment.objects.filter(round=round).select_related("author__profile", "latent")
    return comments.filter(latent_id=latent_id) if latent_id is not None else comments


def author_pseudonym(user) -> str:
    return _pseudonym(user)
