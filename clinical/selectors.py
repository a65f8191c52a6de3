"""Read paths of the clinical pages: what physicians concluded about the latents that fired, which
SAEs a user may explain with, drift reports and protected-attribute flags."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from accounts.permissions import saes_visible_to
from annotation.access import latents_blind_to
from annotation.models import (
    DETECTION_VALIDATED_AT,
    PLATFORM_CONSENSUS_METHOD,
    RESERVED_CONCEPTS,
    Adjudication,
    Concept,
    Consensus,
    Label,
    Round,
)
from features.models import SAE, Corpus, Latent

# The platform's consensus method (bayesian-ds), read through the SAE-scope manager.
CONSENSUS_METHOD = PLATFORM_CONSENSUS_METHOD
# A consensus without a routing decision counts as settled at these (the defaults of Round.routing_*).
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
    n_labels: int  # judgments, hidden repeats included
    max_activation: float  # over the training corpus, from mining
    adjudicated: bool = False
    withheld: bool = False  # the user is rating this latent in a round not yet revealed
    protected: list = field(default_factory=list)  # protected-attribute associations (blank when withheld)
    n_raters: int = 0  # distinct raters behind the consensus (0: not recorded, older rows)
    simulated: str = "none"  # "all", "some" or "none" of its labels come from simulated rounds (the demo's)

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
    """Latent ids of `sae` whose consensus a physician or senior must not see: any latent of an open or
    closed-but-unrevealed round, and theirs in a round not revealed; a clinician the same, holding none
    (annotation.access.latents_blind_to)."""
    if user is None:
        return set()
    return set(latents_blind_to(user).filter(sae=sae).values_list("pk", flat=True))


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


def simulated_shares(*, sae: SAE, latent_ids) -> dict[int, str]:
    """latent id -> "all", "some" or "none": how many of its labels in closed rounds on `sae` were given
    by simulated raters (`Round.simulated`, the demo's round)."""
    kinds: dict[int, set[bool]] = {}
    for latent_id, simulated in (
        Label.objects.filter(
            assignment__latent_id__in=list(latent_ids),
            assignment__round__sae=sae,
            assignment__round__status__in=(Round.Status.CLOSED, Round.Status.REVEALED),
        )
        .values_list("assignment__latent_id", "assignment__round__simulated")
        .distinct()
    ):
        kinds.setdefault(latent_id, set()).add(simulated)
    return {
        latent_id: ("all" if found == {True} else "some" if True in found else "none")
        for latent_id, found in kinds.items()
    }


def latent_labels(*, sae: SAE, indices, user=None) -> dict[int, LatentLabel]:
    """index -> what physicians concluded about that latent of `sae`, with its uncertainty class. A
    latent the user is rating in a round not yet revealed is withheld: unlabelled, and its protected
    associations blanked too (they would hint at the answer)."""
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
    simulated = simulated_shares(sae=sae, latent_ids=[latent.pk for latent in latents.values()])
    out = {}
    for index, latent in latents.items():
        row, decision = consensus.get(latent.pk), adjudications.get(latent.pk)
        common = {
            "latent_id": latent.pk,
            "index": index,
            "max_activation": latent.max_activation,
        }
        if latent.pk in withheld or (row is None and decision is None):
            out[index] = LatentLabel(
                protected=[] if latent.pk in withheld else list(latent.protected_associations or []),
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
            n_raters=row.n_raters if row is not None else 0,
            simulated=simulated.get(latent.pk, "none"),
            adjudicated=decision is not None,
            protected=list(latent.protected_associations or []),
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
    """One SAE per other hook point of the same host model (the newest), visible to the user (every one
    when `user` is None: the command line), with `sae` itself: the layers of a per-layer flow, shallowest
    first."""
    chosen = {sae.hook_point_id: sae}
    candidates = explainable_saes(user=user) if user is not None else SAE.objects.exclude(artifact_uri="")
    for other in candidates.filter(hook_point__host_model=sae.hook_point.host_model).order_by("-created_at"):
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


def saved_notes(*, user) -> QuerySet:
    """The notes `user` kept: only their own, whatever their role, newest first."""
    from .models import SavedNote

    if not getattr(user, "is_authenticated", False):
        return SavedNote.objects.none()
    return SavedNote.objects.filter(owner=user).select_related("sae").order_by("-created_at")


def protected_scan_jobs(*, user, sae: SAE) -> QuerySet:
    """Protected-attribute scan jobs of `sae` the user may follow, newest first."""
    from accounts.permissions import jobs_visible_to
    from inference.models import Job

    return jobs_visible_to(user, Job.objects.filter(kind="protected_scan", parameters__sae_id=sae.pk)).order_by(
        "-created_at"
    )
