"""Statistics of closed rounds, persisted: agreement reports, rater reliability, consensus and routing.

Long-format rows are built here from the database; every number comes from the pure `annotation.stats`
package. Every write is an update_or_create on the row's natural key, so recomputing is idempotent.

The computation runs outside any transaction and collects its writes (`Writes`); they run at the end in
one short transaction, so a round's statistics are never half-written and no lock is held while computing.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from accounts.audit import audit_record
from features.models import SAE, Latent

from ..models import (
    BASELINE_CONSENSUS_METHODS,
    PLATFORM_CONSENSUS_METHOD,
    AgreementReport,
    Concept,
    Consensus,
    Label,
    RaterReliability,
    Round,
)
from ..stats.agreement import fleiss_kappa, krippendorff_alpha, pairwise_cohen_kappa, percent_agreement, unit_agreement
from ..stats.consensus import ConsensusResult, consensus_fit, dawid_skene
from ..stats.reliability import combine_weights, rater_weights, test_retest_shrunk
from ..stats.routing import ADJUDICATE, CONSENSUS, RoutingConfig, route_latents
from ..stats.tables import Ratings, count_matrix, ratings_from_rows, reliability_matrix

ALPHA_LEVELS = ("nominal", "hierarchical")
LABELLED_ROUND_STATUSES = (Round.Status.CLOSED, Round.Status.REVEALED)
Writes = list[Callable[[], object]]  # database writes deferred to the closing transaction
Progress = Callable[[float, str], None]  # (fraction done, what is being computed)
# Wraps the closing writes inside their transaction (see round_statistics_compute); defined after RoundStatistics.
Commit = Callable[["RoundStatistics"], AbstractContextManager[object]]
# A consensus or reliability row's scope, as the keyword arguments of its foreign key: {"round_id": 12}
# (one round's labels) or {"sae_id": 3} (every closed round on the SAE).
Scope = dict[str, int]


@dataclass
class RoundStatistics:
    """What a computation wrote: a summary for the caller, the audit log and the page's message."""

    n_labels: int
    alpha: dict[str, float | None] = field(default_factory=dict)
    n_consensus: int = 0
    n_raters: int = 0
    routed: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Judgments:
    ratings: Ratings  # every judgment, hidden repeats included
    first: Ratings  # first judgments only: what the consensus is fitted on
    user_of: dict[str, int]  # pseudonym → user id
    n_rounds: dict[str, int]  # latent id → rounds with labels


def routing_config(*, round: Round) -> RoutingConfig:  # noqa: A002
    """The round's routing thresholds (docs/algorithms.md), as the pure routing rule takes them."""
    return routing_config_from_fields(fields=vars(round))


def routing_config_from_fields(*, fields) -> RoutingConfig:
    """The thresholds from anything holding the Round's routing field names (a row, form or serializer data)."""
    return RoutingConfig(
        min_rounds=fields["routing_min_rounds"],
        entropy_ceiling=fields["routing_entropy_ceiling"],
        top_posterior_floor=fields["routing_top_posterior_floor"],
    )


def _judgments(labels) -> _Judgments | None:
    rows = list(
        labels.order_by("submitted_at", "pk").values_list(
            "assignment__latent_id",
            "assignment__rater_id",
            "assignment__rater__profile__pseudonym",
            "concept__code",
            "assignment__is_repeat",
            "rationale",
            "assignment__round_id",
        )
    )
    if not rows:
        return None
    rounds_per_latent: dict[str, set[int]] = defaultdict(set)
    user_of = {}
    for latent_id, rater_id, pseudonym, *_rest, round_id in rows:
        rounds_per_latent[str(latent_id)].add(round_id)
        user_of[pseudonym or f"user-{rater_id}"] = rater_id
    ratings = ratings_from_rows(
        units=[str(row[0]) for row in rows],
        raters=[row[2] or f"user-{row[1]}" for row in rows],
        values=[row[3] for row in rows],
        is_repeat=[row[4] for row in rows],
        extra={"rationale": [row[5] for row in rows]},
    )
    first_rows = [row for row, occasion in zip(rows, ratings.occasion.tolist(), strict=True) if occasion == 0]
    first = (
        ratings_from_rows(
            units=[str(row[0]) for row in first_rows],
            raters=[row[2] or f"user-{row[1]}" for row in first_rows],
            values=[row[3] for row in first_rows],
        )
        if first_rows
        else ratings
    )
    return _Judgments(
        ratings=ratings,
        first=first,
        user_of=user_of,
        n_rounds={latent: len(rounds) for latent, rounds in rounds_per_latent.items()},
    )


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _report(
    *,
    writes: Writes,
    round: Round,
    metric: str,
    level: str,
    value=None,
    ci=None,  # noqa: A002
    n_units=0,
    n_raters=0,
    n_pairable=0,
    parameters=None,
) -> None:
    ci = ci or (None, None)
    writes.append(
        lambda: AgreementReport.objects.update_or_create(
            round=round,
            metric=metric,
            level=level,
            defaults={
                "value": _finite(value),
                "ci_low": _finite(ci[0]),
                "ci_high": _finite(ci[1]),
                "n_units": n_units,
                "n_raters": n_raters,
                "n_pairable": n_pairable,
                "parameters": parameters or {},
            },
        )
    )


def _agreement_reports(
    *,
    writes: Writes,
    round: Round,
    ratings: Ratings,
    n_draws: int,  # noqa: A002
    seed: int,
) -> dict[str, float | None]:
    parent = {c.code: (c.parent_code or None) for c in round.rubric_version.concepts.all()}
    matrix = reliability_matrix(ratings=ratings)
    alphas: dict[str, float | None] = {}
    for level in ALPHA_LEVELS:
        try:
            result = krippendorff_alpha(
                matrix=matrix,
                level=level,
                parent=parent if level == "hierarchical" else None,
                n_draws=n_draws,
                seed=seed,
            )
        except ValueError as error:
            alphas[level] = None
            _report(
                writes=writes, round=round, metric="krippendorff_alpha", level=level, parameters={"reason": str(error)}
            )
            continue
        alphas[level] = _finite(result.alpha)
        parameters = {"n_draws": result.n_draws, "seed": seed, "confidence": result.confidence}
        if not result.defined:
            parameters["reason"] = f"undefined ({result.reason})"
        _report(
            writes=writes,
            round=round,
            metric="krippendorff_alpha",
            level=level,
            value=result.alpha,
            ci=result.ci,
            n_units=result.n_units,
            n_raters=result.n_raters,
            n_pairable=result.n_pairable,
            parameters=parameters,
        )

    counts = count_matrix(ratings=ratings).counts
    per_unit = counts.sum(axis=1)
    pairable = per_unit[per_unit >= 2]
    if pairable.size:
        # Fleiss needs equal ratings per unit: use the units with the most common count.
        common = Counter(pairable.tolist()).most_common(1)[0][0]
        chosen = counts[per_unit == common]
        try:
            fleiss = fleiss_kappa(counts=chosen)
            _report(
                writes=writes,
                round=round,
                metric="fleiss_kappa",
                level="nominal",
                value=fleiss.kappa,
                n_units=fleiss.n_units,
                n_raters=fleiss.n_raters_per_unit,
                n_pairable=int(chosen.sum()),
                parameters={
                    "observed": fleiss.observed_agreement,
                    "expected": fleiss.expected_agreement,
                    "units_left_out": int(pairable.size - chosen.shape[0]),
                    **({} if fleiss.defined else {"reason": f"undefined ({fleiss.reason})"}),
                },
            )
        except ValueError as error:
            _report(
                writes=writes, round=round, metric="fleiss_kappa", level="nominal", parameters={"reason": str(error)}
            )
        agreement = percent_agreement(counts=counts)
        _report(
            writes=writes,
            round=round,
            metric="percent_agreement",
            level="nominal",
            value=agreement.value,
            n_units=agreement.n_units,
            n_pairable=int(pairable.sum()),
            parameters={"n_pairs": agreement.n_pairs},
        )
        pairwise = pairwise_cohen_kappa(matrix=matrix)
        kappas = pairwise.kappa[np.triu_indices(len(pairwise.raters), k=1)]
        kappas = kappas[~np.isnan(kappas)]
        _report(
            writes=writes,
            round=round,
            metric="cohen_kappa_mean",
            level="nominal",
            value=float(kappas.mean()) if kappas.size else None,
            n_raters=len(pairwise.raters),
            parameters={"n_pairs": int(kappas.size)}
            if kappas.size
            else {"reason": "no pair of raters shares two or more latents"},
        )
    else:
        for metric in ("fleiss_kappa", "percent_agreement", "cohen_kappa_mean"):
            _report(
                writes=writes,
                round=round,
                metric=metric,
                level="nominal",
                parameters={"reason": "no latent has two labels"},
            )
    return alphas


def _concept_terms(concepts: Iterable[Concept]) -> dict[str, list[str]]:
    terms: dict[str, list[str]] = defaultdict(list)
    for concept in concepts:
        for term in [concept.name, *concept.synonyms]:
            if term and term not in terms[concept.code]:
                terms[concept.code].append(term)
    return dict(terms)


def _parents(concepts: Iterable[Concept]) -> dict[str, str | None]:
    """The rubric tree, concept → parent code, for the fit's sibling structure (later versions win)."""
    parents: dict[str, str | None] = {}
    for concept in sorted(concepts, key=lambda c: (c.rubric_version_id, c.pk)):
        parents[concept.code] = concept.parent_code or None
    return parents


def _fit(
    *,
    method: str,
    ratings: Ratings,
    weights: dict[str, float],
    parents: dict[str, str | None],
) -> ConsensusResult:
    if method == "dawid-skene":  # the 1979 MLE, kept as a baseline exactly as the paper has it
        return dawid_skene(ratings=ratings, weights=weights)
    return consensus_fit(method=method, ratings=ratings, weights=weights, parents=parents)


def _reliability_and_consensus(
    *, writes: Writes, judgments: _Judgments, scope: Scope, concepts: Iterable[Concept], seed: int
) -> dict[str, ConsensusResult]:
    """Shrunk test–retest with its interval and rationale learnability, combined into rater weights, then the
    platform consensus and its baselines fitted with those weights and the rubric tree; the reliability
    rows go to `writes`.

    The weight's test–retest term is the shrunk estimate, so a rater with three repeat pairs contributes
    what those pairs say (pulled toward the round's pool) instead of the neutral value that the unshrunk
    kappa's five-pair minimum gave every rater of a calibration round."""
    ratings = judgments.ratings
    concepts = list(concepts)
    weights = rater_weights(
        ratings=ratings, rationale_column="rationale", concept_terms=_concept_terms(concepts), seed=seed
    )
    retest = test_retest_shrunk(ratings=ratings)
    weight_of = {
        rater: combine_weights(
            test_retest=retest.raters[rater].kappa,
            learnability=weight.learnability.kappa if weight.learnability is not None else None,
        )
        for rater, weight in weights.items()
    }
    parents = _parents(concepts)
    # The consensus is fitted on first judgments: a hidden repeat probes its rater's consistency (test–retest
    # above); counted as a second vote it would double that rater's say on the latent and sharpen the
    # posterior beyond what the raters' disagreement supports.
    results = {
        method: _fit(method=method, ratings=judgments.first, weights=weight_of, parents=parents)
        for method in (PLATFORM_CONSENSUS_METHOD, *BASELINE_CONSENSUS_METHODS)
    }
    platform = results[PLATFORM_CONSENSUS_METHOD]
    accuracy = dict(zip(platform.raters, platform.rater_accuracy.tolist(), strict=True))
    for pseudonym, weight in weights.items():
        learned = weight.learnability
        shrunk = retest.raters[pseudonym]
        defaults = {
            "test_retest": _finite(shrunk.kappa),
            "test_retest_low": _finite(shrunk.low),
            "test_retest_high": _finite(shrunk.high),
            "test_retest_n_pairs": shrunk.n_pairs,
            "test_retest_reason": (shrunk.reason or "")[:200],
            "learnability": _finite(learned.kappa) if learned is not None else None,
            "learnability_reason": ((learned.reason if learned is not None else "no rationales") or "")[:200],
            "ds_accuracy": _finite(accuracy.get(pseudonym)),
            "weight": weight_of[pseudonym],
        }
        writes.append(
            lambda rater_id=judgments.user_of[pseudonym], defaults=defaults: RaterReliability.objects.update_or_create(
                rater_id=rater_id, **scope, defaults=defaults
            )
        )
    return results


def _test_retest_report(*, writes: Writes, round: Round, ratings: Ratings) -> None:  # noqa: A002
    """The round's pooled test–retest kappa with its interval, and how many pairs it rests on."""
    retest = test_retest_shrunk(ratings=ratings)
    pooled = retest.pooled
    parameters = {
        "n_agreeing": pooled.n_agreeing,
        "agreement": pooled.agreement,
        "chance_agreement": retest.chance_agreement,
        "confidence": retest.confidence,
        "interval": "Jeffreys",
    }
    if pooled.reason:
        parameters["reason"] = pooled.reason
    _report(
        writes=writes,
        round=round,
        metric="test_retest",
        level="pooled",
        value=pooled.kappa,
        ci=(pooled.low, pooled.high),
        n_raters=sum(1 for r in retest.raters.values() if r.n_pairs),
        n_pairable=pooled.n_pairs,
        parameters=parameters,
    )


def _consensus_save(
    *, result: ConsensusResult, method: str, ratings: Ratings, scope: Scope, n_rounds: dict[str, int]
) -> dict[str, Consensus]:
    """`ratings` holds every judgment: n_labels counts them all (repeats included), n_raters the distinct
    raters, agreement the share of agreeing pairs of first labels."""
    labels = [str(label) for label in result.labels]
    n_labels = np.bincount(ratings.unit_index, minlength=len(ratings.units))
    pairs = np.unique(ratings.unit_index.astype(np.int64) * len(ratings.raters) + ratings.rater_index)
    n_raters = np.bincount(pairs // len(ratings.raters), minlength=len(ratings.units))
    agreement = unit_agreement(counts=count_matrix(ratings=ratings).counts).agreement
    position_of = {unit: position for position, unit in enumerate(ratings.units)}
    saved = {}
    for index, unit in enumerate(result.units):
        row = result.posterior[index]
        position = position_of[unit]
        values = {
            "posterior": {label: round(float(p), 6) for label, p in zip(labels, row, strict=True) if p >= 5e-7},
            "map_concept": labels[int(np.argmax(row))],
            "entropy": float(min(max(result.entropy[index], 0.0), 1.0)),
            "n_labels": int(n_labels[position]),
            "n_raters": int(n_raters[position]),
            "n_rounds": n_rounds.get(unit, 1),
            "agreement": _finite(float(agreement[position])),
        }
        saved[unit], _ = Consensus.objects.update_or_create(
            latent_id=int(unit), method=method, **scope, defaults=values
        )
    return saved


def _consensus_save_all(
    *, results: dict[str, ConsensusResult], ratings: Ratings, scope: Scope, n_rounds: dict[str, int]
) -> dict[str, Consensus]:
    """Every method's rows; returns the platform method's, the ones routing and the pages read."""
    saved = {
        method: _consensus_save(result=result, method=method, ratings=ratings, scope=scope, n_rounds=n_rounds)
        for method, result in results.items()
    }
    return saved[PLATFORM_CONSENSUS_METHOD]


def _latest_routing(*, sae: SAE) -> RoutingConfig:
    latest = (
        Round.objects.filter(sae=sae, status__in=LABELLED_ROUND_STATUSES)
        .exclude(kind=Round.Kind.DETECTION)
        .order_by("-closed_at", "-pk")
        .first()
    )
    return routing_config(round=latest) if latest is not None else RoutingConfig()


def sae_consensus_compute(
    *,
    sae: SAE,
    by=None,
    seed: int = 0,
    routing: RoutingConfig | None = None,
) -> dict[str, int]:
    """Consensus over every label of the SAE's closed rounds, then routing: consensus | ambiguous.

    `routing` defaults to the thresholds of the SAE's most recently closed round: the round whose
    closing triggers this computation decides how its latents are routed."""
    write = _sae_consensus_plan(sae=sae, by=by, seed=seed, routing=routing)
    with transaction.atomic():
        return write()


def _sae_consensus_plan(
    *,
    sae: SAE,
    by=None,
    seed: int = 0,
    routing: RoutingConfig | None = None,
) -> Callable[[], dict[str, int]]:
    """Compute the SAE-wide consensus and routing now; the returned function writes them (in the caller's
    transaction) and returns the routing counts."""
    labels = Label.objects.filter(
        assignment__round__sae=sae,
        assignment__round__status__in=LABELLED_ROUND_STATUSES,
    ).exclude(assignment__round__kind=Round.Kind.DETECTION)
    judgments = _judgments(labels)
    if judgments is None:
        return dict
    concepts = Concept.objects.filter(rubric_version__rounds__sae=sae).distinct()
    scope = {"sae_id": sae.pk}
    routing = routing if routing is not None else _latest_routing(sae=sae)
    writes: Writes = []
    results = _reliability_and_consensus(writes=writes, judgments=judgments, scope=scope, concepts=concepts, seed=seed)
    decisions = route_latents(
        consensus=results[PLATFORM_CONSENSUS_METHOD], rounds_with_labels=judgments.n_rounds, config=routing
    )

    def write() -> dict[str, int]:
        routed: Counter = Counter()
        for deferred in writes:
            deferred()
        saved = _consensus_save_all(
            results=results, ratings=judgments.ratings, scope=scope, n_rounds=judgments.n_rounds
        )
        status_for = {CONSENSUS: Latent.Status.CONSENSUS, ADJUDICATE: Latent.Status.AMBIGUOUS}
        by_status: dict[str, list[int]] = defaultdict(list)
        for unit, decision in decisions.items():
            consensus = saved[unit]
            consensus.routing = decision.decision
            consensus.routing_reason = decision.reason[:200]
            consensus.save(update_fields=["routing", "routing_reason"])
            by_status[status_for.get(decision.decision, Latent.Status.IN_ROUND)].append(int(unit))
            routed[decision.decision] += 1
        for status, ids in by_status.items():
            # An adjudicated latent keeps its decision; a new round's labels do not undo it.
            Latent.objects.filter(pk__in=ids).exclude(status=Latent.Status.ADJUDICATED).update(status=status)
        audit_record(
            actor=by,
            action="consensus.compute",
            obj=sae,
            payload={"scope": f"sae:{sae.pk}", "method": PLATFORM_CONSENSUS_METHOD, **routed},
        )
        return dict(routed)

    return write


def round_statistics_compute(
    *,
    round: Round,
    by=None,
    n_draws: int = 1000,  # noqa: A002
    progress: Progress | None = None,
    commit: Commit | None = None,
) -> RoundStatistics:
    """Agreement, reliability and consensus of one closed round, then the SAE-wide consensus and routing.

    Everything is computed first (`progress` hears each stage), then written in one short transaction.
    `commit(summary)`, a context manager, wraps those writes inside that transaction: the statistics job
    locks the round there, checks its lease is still its own (raising rolls everything back) and marks
    the round done after them, so results are written once. Run it through the statistics job
    (`round_statistics_request`), not in a web request."""
    progress = progress or (lambda fraction, message: None)
    commit = commit or (lambda summary: nullcontext())
    if round.status not in LABELLED_ROUND_STATUSES:
        from .errors import RoundStateError

        raise RoundStateError(f"Statistics are computed for closed rounds; '{round.name}' is {round.status}.")
    if round.kind == Round.Kind.DETECTION:
        from .detection import detection_accuracy_compute

        summary = RoundStatistics(n_labels=0)
        with transaction.atomic(), commit(summary):
            detection_accuracy_compute(round=round, by=by)
        return summary
    seed = round.pk
    judgments = _judgments(Label.objects.filter(assignment__round=round))
    if judgments is None:
        summary = RoundStatistics(n_labels=0)
        with transaction.atomic(), commit(summary):
            _latents_release(round=round)
            audit_record(actor=by, action="round.statistics", obj=round, payload={"n_labels": 0})
        return summary
    summary = RoundStatistics(n_labels=judgments.ratings.n_judgments, n_raters=len(judgments.ratings.raters))
    writes: Writes = []
    progress(0.05, f"agreement of {summary.n_labels} labels ({n_draws} bootstrap draws)")
    summary.alpha = _agreement_reports(
        writes=writes, round=round, ratings=judgments.ratings, n_draws=n_draws, seed=seed
    )
    _test_retest_report(writes=writes, round=round, ratings=judgments.ratings)
    progress(0.5, "rater reliability and the round's consensus")
    scope = {"round_id": round.pk}
    results = _reliability_and_consensus(
        writes=writes, judgments=judgments, scope=scope, concepts=round.rubric_version.concepts.all(), seed=seed
    )
    progress(0.75, f"consensus and routing over every closed round of {round.sae.name}")
    sae_write = _sae_consensus_plan(sae=round.sae, by=by, routing=routing_config(round=round))
    progress(0.95, "writing the results")
    with transaction.atomic(), commit(summary):
        for deferred in writes:
            deferred()
        summary.n_consensus = len(
            _consensus_save_all(results=results, ratings=judgments.ratings, scope=scope, n_rounds={})
        )
        summary.routed = sae_write()
        _latents_release(round=round)
        audit_record(
            actor=by,
            action="round.statistics",
            obj=round,
            payload={
                "n_labels": summary.n_labels,
                "alpha": summary.alpha,
                "n_consensus": summary.n_consensus,
                "routed": summary.routed,
            },
        )
    return summary


def _latents_release(*, round: Round) -> None:  # noqa: A002
    """Latents of the round that got no label and are in no other open round are unlabelled again."""
    busy = Round.objects.filter(status=Round.Status.OPEN).exclude(pk=round.pk)
    (
        round.latents.filter(status=Latent.Status.IN_ROUND)
        .exclude(rounds__in=busy)
        .exclude(consensus__sae_id=round.sae_id)
        .update(status=Latent.Status.UNLABELLED)
    )
