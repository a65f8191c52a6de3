"""Read paths of the clinical pages: what physicians concluded about the latents that fired, which
SAEs a user may explain with, drift reports and protected-attribute flags."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from accounts.models import Role
from accounts.permissions import can_label, role_of, saes_visible_to
from annotation.models import (
    DETECTION_VALIDATED_AT,
    PLATFORM_CONSENSUS_METHOD,
    RESERVED_CONCEPTS,
    Adjudication,
    Assignment,
    Concept,
    Consensus,
)
from features.models import SAE, Corpus, Latent

# The platform's consensus method (bayesian-ds), read through the SAE-scope manager.
CONSENSUS_METHOD = PLATFORM_CONSENSUS_METHOD
# A consensus without a routing decision counts as settled at these (DESIGN §5, routing defaults).
SETTLED_TOP_POSTERIOR = 0.6
SETTLED_MAX_ENTROPY = 0.5
UNCERTAINTY_CLASSES = ("validated", "consensus", "ambiguous", "unlabelled")


def sae_consensus_rows(*, sae: SAE, latent_ids) -> dict[int, Consensus]:
    """The SAE-wide consensus row of each latent (latent id -> row)."""
    rows = Consensus.objects.of_sae(sae.pk).platform().filter(latent_id__in=list(latent_ids))
    return {row.latent_id: row for row in rows}


@dataclass(frozen=True)
class LatentLabel:
    latent_id: int
    index: int
    label: str | None  # concept code
    name: str | None  # concept name
    posterior: float | None  # posterior of that concept
    uncertainty: str  # one of UNCERTAINTY_CLASSES
    agreement: float | None  # share of agreeing pairs of first labels in the rounds behind the consensus
    detection_accuracy: float | None
    n_labels: int
    max_activation: float  # over the training corpus, from mining
    adjudicated: bool = False
    withheld: bool = False  # the user is rating this latent in a round not yet revealed
    protected: list = field(default_factory=list)  # protected-attribute associations

    @property
    def reserved(self) -> bool:
        return self.label in RESERVED_CONCEPTS


def concept_names(*, sae: SAE) -> dict[str, tuple[str, bool]]:
    """code -> (name, protected) over the rubric versions used on the SAE, latest version winning."""
    rows = (
        Concept.objects.filter(rubric_version__rounds__sae=sae)
        .order_by("rubric_version__version")
        .values_list("code", "name", "protected")
        .distinct()
    )
    return {code: (name, protected) for code, name, protected in rows} | {
        code: (name, False) for code, name in RESERVED_CONCEPTS.items()
    }


def latents_withheld(*, user, sae: SAE) -> set[int]:
    """Latent ids whose consensus a rater must not see yet: theirs in a round not revealed (anchoring).
    A clinician reads only what revealed rounds concluded: a latent of a closed, unrevealed round (whose
    consensus the SAE-wide row already holds) stays unlabelled for them."""
    if user is not None and role_of(user) == Role.CLINICIAN:
        return set(
            Assignment.objects.filter(round__sae=sae, round__status="closed").values_list("latent_id", flat=True)
        )
    if user is None or not can_label(user):
        return set()
    return set(
        Assignment.objects.filter(rater=user, round__sae=sae)
        .exclude(round__status="revealed")
        .values_list("latent_id", flat=True)
    )


def _uncertainty(consensus: Consensus, latent: Latent, adjudicated: bool) -> str:
    if (
        consensus is not None
        and consensus.detection_accuracy is not None
        and consensus.detection_accuracy >= DETECTION_VALIDATED_AT
    ):
        return "validated"
    if adjudicated or latent.status == Latent.Status.ADJUDICATED:
        return "consensus"
    if consensus.routing:
        return "consensus" if consensus.routing == "consensus" else "ambiguous"
    if latent.status == Latent.Status.AMBIGUOUS:
        return "ambiguous"
    top = consensus.posterior.get(consensus.map_concept, 0.0)
    return "consensus" if top >= SETTLED_TOP_POSTERIOR and consensus.entropy <= SETTLED_MAX_ENTROPY else "ambiguous"


def latent_labels(*, sae: SAE, indices, user=None) -> dict[int, LatentLabel]:
    """index -> what physicians concluded about that latent of `sae`, with its uncertainty class."""
    latents = {latent.index: latent for latent in Latent.objects.filter(sae=sae, index__in=list(indices))}
    consensus = sae_consensus_rows(sae=sae, latent_ids=[latent.pk for latent in latents.values()])
    adjudications = {}
    for adjudication in (
        Adjudication.objects.filter(latent_id__in=[latent.pk for latent in latents.values()])
        .select_related("concept")
        .order_by("decided_at")
    ):
        adjudications[adjudication.latent_id] = adjudication  # the latest decision wins
    names = concept_names(sae=sae)
    withheld = latents_withheld(user=user, sae=sae)
    out = {}
    for index, latent in latents.items():
        row, decision = consensus.get(latent.pk), adjudications.get(latent.pk)
        common = {
            "latent_id": latent.pk,
            "index": index,
            "max_activation": latent.max_activation,
            "protected": list(latent.protected_associations or []),
        }
        if latent.pk in withheld or (row is None and decision is None):
            out[index] = LatentLabel(
                label=None,
                name=None,
                posterior=None,
                uncertainty="unlabelled",
                agreement=None,
                detection_accuracy=None,
                n_labels=0,
                withheld=latent.pk in withheld,
                **common,
            )
            continue
        code = decision.concept.code if decision is not None else row.map_concept
        out[index] = LatentLabel(
            label=code,
            name=names.get(code, (code, False))[0],
            posterior=float(row.posterior.get(code, 0.0)) if row is not None else None,
            uncertainty=_uncertainty(row, latent, decision is not None) if row is not None else "consensus",
            agreement=row.agreement if row is not None else None,
            detection_accuracy=row.detection_accuracy if row is not None else None,
            n_labels=row.n_labels if row is not None else 0,
            adjudicated=decision is not None,
            **common,
        )
    return out


def explainable_saes(*, user) -> QuerySet[SAE]:
    """SAEs the user may explain notes with: visible to them, with weights on disk and a known host model."""
    return (
        saes_visible_to(user, SAE.objects.select_related("hook_point__host_model", "activation_set__corpus"))
        .exclude(artifact_uri="")
        .order_by("hook_point__host_model__name", "hook_point__layer", "name")
    )


def flow_saes(*, sae: SAE, user) -> list[SAE]:
    """One SAE per other hook point of the same host model (the newest), visible to the user, with `sae`
    itself: the layers of a per-layer flow, shallowest first."""
    chosen = {sae.hook_point_id: sae}
    for other in (
        explainable_saes(user=user).filter(hook_point__host_model=sae.hook_point.host_model).order_by("-created_at")
    ):
        chosen.setdefault(other.hook_point_id, other)
    return sorted(chosen.values(), key=lambda s: (s.hook_point.layer, s.hook_point.name))


def protected_latents(*, sae: SAE) -> QuerySet[Latent]:
    """Latents of `sae` with at least one protected-attribute association."""
    return Latent.objects.filter(sae=sae).exclude(protected_associations=[]).order_by("index")


def drift_report(*, job, user=None, full: bool = False) -> dict:
    """A finished drift-audit job's report (DESIGN §6 shape) with the flagged latents' labels; `full` adds
    the reasons, thresholds, token counts, q-values and the binned rate-against-rate grid (the page's plot;
    every latent's two rates are in the job's `rates_uri` artifact)."""
    result = job.result or {}
    report = result.get("report")
    if job.status != "succeeded" or not report:
        raise ValueError(f"job {job.pk} has no drift report ({job.status})")
    sae = SAE.objects.get(pk=result["sae_id"])
    labels = latent_labels(sae=sae, indices=[flag["index"] for flag in report["flagged"]], user=user)
    flagged = []
    for flag in report["flagged"]:
        label = labels.get(flag["index"])
        row = {
            "latent_id": label.latent_id if label else None,
            "index": flag["index"],
            "rate_reference": flag["rate_reference"],
            "rate_corpus": flag["rate_corpus"],
            "log_ratio": flag["log_ratio"],
            "label": label.label if label else None,
            "uncertainty": label.uncertainty if label else "unlabelled",
        }
        if full:
            row.update(
                q_value=flag["q_value"], name=label.name if label else None, protected=label.protected if label else []
            )
        flagged.append(row)
    out = {
        "drift": report["drift"],
        "fve_reference": report["fve_reference"],
        "fve_corpus": report["fve_corpus"],
        "divergence": report["divergence"],
        "flagged": flagged,
    }
    if full:
        out.update(
            {
                key: report[key]
                for key in (
                    "reasons",
                    "l0_distance",
                    "mean_l0_reference",
                    "mean_l0_corpus",
                    "n_tokens_reference",
                    "n_tokens_corpus",
                    "n_tested",
                    "config",
                )
            },
            rate_histogram=_rate_histogram(report),
            sae=sae,
            corpus=Corpus.objects.get(pk=result["corpus_id"]),
            reference=Corpus.objects.get(pk=result["reference_id"]),
            seconds=result.get("seconds"),
        )
    return out


def _rate_histogram(report: dict) -> dict:
    """The stored grid; audits recorded before it existed kept every latent's two rates instead."""
    if "rate_histogram" in report:
        return report["rate_histogram"]
    from inference.engine.rate_grid import rate_histogram

    return rate_histogram(report["rates_reference"], report["rates_corpus"])


def drift_jobs(*, user) -> QuerySet:
    """Drift-audit jobs the user may follow, newest first."""
    from accounts.permissions import jobs_visible_to
    from inference.models import Job

    return jobs_visible_to(user, Job.objects.filter(kind="drift_audit")).order_by("-created_at")


def protected_scan_jobs(*, user, sae: SAE) -> QuerySet:
    """Protected-attribute scan jobs of `sae` the user may follow, newest first."""
    from accounts.permissions import jobs_visible_to
    from inference.models import Job

    return jobs_visible_to(user, Job.objects.filter(kind="protected_scan", parameters__sae_id=sae.pk)).order_by(
        "-created_at"
    )
