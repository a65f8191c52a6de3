"""Read paths for researchers and seniors: the latent browser, a latent's label history, the adjudication queue."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from features.access import latents_readable
from features.models import Latent

from .. import access
from ..models import PLATFORM_CONSENSUS_METHOD, Adjudication, Concept, Consensus, Round

SORTS = {
    "index": ("sae_id", "index"),
    "density": (F("density").desc(nulls_last=True), "index"),
    "-density": (F("density").asc(nulls_last=True), "index"),
    "agreement": (F("consensus_agreement").desc(nulls_last=True), "index"),
    "-agreement": (F("consensus_agreement").asc(nulls_last=True), "index"),
    "entropy": (F("consensus_entropy").desc(nulls_last=True), "index"),
    "-entropy": (F("consensus_entropy").asc(nulls_last=True), "index"),
    "detection": (F("detection_accuracy").desc(nulls_last=True), "index"),
    "-detection": (F("detection_accuracy").asc(nulls_last=True), "index"),
}


def sae_consensus_field(field: str) -> Subquery:
    """One field of the outer latent's SAE-wide consensus row (the platform method)."""
    return Subquery(
        Consensus.objects.platform().filter(latent_id=OuterRef("pk"), sae_id=OuterRef("sae_id")).values(field)[:1]
    )


def latent_browse(
    *, user, q: str = "", sort: str = "index", sae_id: int | None = None, status: str = ""
) -> QuerySet[Latent]:
    """Latents of the SAEs the user may see, with their SAE-wide consensus; `q` searches label concepts
    (code or name), free-text names, the consensus and adjudicated concepts, and latent indices."""
    latents = latents_readable(user).annotate(
        consensus_concept=sae_consensus_field("map_concept"),
        consensus_entropy=sae_consensus_field("entropy"),
        consensus_agreement=sae_consensus_field("agreement"),
        consensus_n_labels=sae_consensus_field("n_labels"),
        consensus_n_raters=sae_consensus_field("n_raters"),
        detection_accuracy=sae_consensus_field("detection_accuracy"),
    )
    if sae_id is not None:
        latents = latents.filter(sae_id=sae_id)
    if status:
        latents = latents.filter(status=status)
    q = q.strip()
    if q:
        # Only labels the user may read: a search must not tell which latents an open round labelled how.
        labelled = (
            access.labels_readable(user)
            .filter(Q(concept__code__iexact=q) | Q(concept__name__icontains=q) | Q(free_text__icontains=q))
            .values("assignment__latent_id")
        )
        concept_codes = Concept.objects.filter(Q(code__iexact=q) | Q(name__icontains=q)).values("code")
        match = (
            Q(pk__in=labelled)
            | Q(consensus__map_concept__in=concept_codes)
            | Q(adjudications__concept__code__in=concept_codes)
        )
        if q.isdigit():
            match |= Q(index=int(q))
        latents = latents.filter(match).distinct()
    return latents.order_by(*SORTS.get(sort, SORTS["index"]))


@dataclass(frozen=True)
class HistoryLabel:
    round_id: int
    round_name: str
    round_kind: str
    round_status: str
    pseudonym: str
    institution: str
    concept_code: str
    concept_name: str
    free_text: str
    confidence: int
    rationale: str
    is_repeat: bool
    submitted_at: object
    n_revisions: int


def latent_history(*, latent: Latent, user) -> list[HistoryLabel]:
    """Every label of the latent that the user may read (never a draft or open round's), oldest round
    first, raters by pseudonym."""
    labels = (
        access.labels_readable(user)
        .filter(assignment__latent=latent)
        .select_related("concept", "assignment__round", "assignment__rater__profile__institution")
        .annotate(n_revisions=Count("revisions"))
        .order_by("assignment__round__created_at", "submitted_at")
    )
    return [
        HistoryLabel(
            round_id=label.assignment.round_id,
            round_name=label.assignment.round.name,
            round_kind=label.assignment.round.kind,
            round_status=label.assignment.round.status,
            pseudonym=label.assignment.rater.profile.pseudonym,
            institution=label.assignment.rater.profile.institution.code,
            concept_code=label.concept.code,
            concept_name=label.concept.name,
            free_text=label.free_text,
            confidence=label.confidence,
            rationale=label.rationale,
            is_repeat=label.assignment.is_repeat,
            submitted_at=label.submitted_at,
            n_revisions=label.n_revisions,
        )
        for label in labels
    ]


def latent_label_distribution(*, latent: Latent) -> dict:
    """The SAE-wide consensus (posterior sorted, with concept names), every scope's consensus rows, and
    the adjudications, newest first."""
    rows = sorted(
        Consensus.objects.filter(latent=latent),
        key=lambda row: (row.sae_id is None, row.round_id or 0, row.method != PLATFORM_CONSENSUS_METHOD, row.method),
    )
    main = next((row for row in rows if row.sae_id == latent.sae_id and row.method == PLATFORM_CONSENSUS_METHOD), None)
    names = dict(Concept.objects.filter(rubric_version__rounds__sae_id=latent.sae_id).values_list("code", "name"))
    posterior = []
    if main is not None:
        posterior = sorted(
            ((code, names.get(code, code), p) for code, p in main.posterior.items()), key=lambda row: -row[2]
        )
    return {
        "consensus": main,
        "posterior": posterior,
        "scopes": rows,
        "names": names,
        "adjudications": list(
            Adjudication.objects.filter(latent=latent)
            .select_related("concept", "senior__profile", "overrode")
            .order_by("-decided_at")
        ),
    }


def adjudication_queue(*, user) -> QuerySet[Latent]:
    """Persistently ambiguous latents of the SAEs the user may see, most uncertain first; never one the
    user still labels in an open round."""
    return (
        access.latents_adjudicable(user)
        .select_related("sae")
        .annotate(
            consensus_concept=sae_consensus_field("map_concept"),
            consensus_entropy=sae_consensus_field("entropy"),
            consensus_n_labels=sae_consensus_field("n_labels"),
            consensus_n_raters=sae_consensus_field("n_raters"),
            consensus_n_rounds=sae_consensus_field("n_rounds"),
        )
        .order_by(F("consensus_entropy").desc(nulls_last=True), "sae_id", "index")
    )


def adjudication_concepts(*, latent: Latent) -> list[Concept]:
    """The concepts of the latest rubric version used on the latent's SAE."""
    latest = (
        Round.objects.filter(sae_id=latent.sae_id)
        .exclude(kind=Round.Kind.DETECTION)
        .order_by("-rubric_version__version", "-created_at")
        .values_list("rubric_version_id", flat=True)
        .first()
    )
    return list(Concept.objects.filter(rubric_version_id=latest).order_by("code")) if latest else []
