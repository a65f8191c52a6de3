"""The context an interpretability researcher reads beside a latent's examples: its nearest neighbours
by decoder cosine (with their consensus labels) and, for causal hosts, the logit tokens it pushes."""

from __future__ import annotations

from dataclasses import dataclass, field

from features import selectors as catalogue
from features.models import Latent

from ..models import Concept, Consensus, Round


@dataclass(frozen=True)
class Neighbour:
    latent_id: int
    index: int
    cosine: float
    concept_code: str = ""
    concept_name: str = ""


@dataclass(frozen=True)
class LatentContext:
    neighbours: list[Neighbour] = field(default_factory=list)
    show_labels: bool = True
    raised: list[tuple[str, float]] = field(default_factory=list)
    lowered: list[tuple[str, float]] = field(default_factory=list)
    hidden_reason: str = ""


def _logit_effects(latent: Latent) -> tuple[list, list]:
    """`Latent.logit_effects` when the host is causal and the field was computed at mining: {"raised":
    [{"token", "id", "logit"}, ...], "lowered": [...], "method": str} (pairs [token, value] accepted too);
    empty lists otherwise."""
    effects = getattr(latent, "logit_effects", None) or {}
    if not isinstance(effects, dict):
        return [], []

    def rows(key: str) -> list[tuple[str, float]]:
        out = []
        for row in effects.get(key, [])[:10]:
            try:
                if isinstance(row, dict):
                    token, value = row["token"], row.get("logit", row.get("value"))
                else:
                    token, value = row[0], row[1]
                out.append((str(token), float(value)))
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        return out

    return rows("raised"), rows("lowered")


def latent_context(*, latent: Latent, round: Round | None = None) -> LatentContext:  # noqa: A002
    """Neighbours and logit effects of `latent`. In a blind calibration round both are hidden: a
    neighbour's consensus label or a pushed token would anchor a rater whose independent reading is the
    point of the round. In another blind round neighbours are listed without their labels."""
    if round is not None and round.blind and round.kind == Round.Kind.CALIBRATION:
        return LatentContext(hidden_reason="Hidden in blind calibration rounds, so that it cannot anchor your reading.")
    show_labels = round is None or not round.blind
    pairs = catalogue.latent_neighbours(latent=latent)
    labels: dict[int, str] = {}
    names: dict[str, str] = {}
    if show_labels and pairs:
        # On a rater's page only settled labels (consensus reached or adjudicated): an SAE-wide consensus that
        # still moves may hold labels of rounds not yet revealed to this rater.
        settled = [
            other.pk
            for other, _ in pairs
            if round is None or other.status in (Latent.Status.CONSENSUS, Latent.Status.ADJUDICATED)
        ]
        labels = dict(
            Consensus.objects.of_sae(latent.sae_id)
            .platform()
            .filter(latent_id__in=settled)
            .values_list("latent_id", "map_concept")
        )
        names = dict(
            Concept.objects.filter(
                code__in=set(labels.values()), rubric_version__rounds__sae_id=latent.sae_id
            ).values_list("code", "name")
        )
    neighbours = [
        Neighbour(
            latent_id=other.pk,
            index=other.index,
            cosine=cosine,
            concept_code=labels.get(other.pk, ""),
            concept_name=names.get(labels.get(other.pk, ""), ""),
        )
        for other, cosine in pairs
    ]
    raised, lowered = _logit_effects(latent)
    return LatentContext(neighbours=neighbours, show_labels=show_labels, raised=raised, lowered=lowered)
