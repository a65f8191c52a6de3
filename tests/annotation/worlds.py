"""Builders for annotation tests: a rubric tree, an SAE whose latents have mined examples, raters, rounds."""

from __future__ import annotations

import itertools

from accounts.models import Role
from annotation import services
from annotation.models import Assignment, Round, RubricVersion
from annotation.services import ConceptSpec
from features.models import SAE, ActivationSet, Corpus, Latent, LatentExample, Snippet
from tests import factories

_counter = itertools.count(1)
CONCEPTS = [
    ConceptSpec("CARDIO", "Cardiovascular"),
    ConceptSpec("HF", "Heart failure", "CARDIO", "Reduced or preserved ejection fraction", ("CHF",)),
    ConceptSpec("AF", "Atrial fibrillation", "CARDIO"),
    ConceptSpec("RENAL", "Renal"),
    ConceptSpec("AKI", "Acute kidney injury", "RENAL"),
    ConceptSpec("NEG", "Negation"),
]
WORDS = [
    "patient",
    "denies",
    "chest",
    "pain",
    "history",
    "of",
    "heart",
    "failure",
    "with",
    "reduced",
    "ejection",
    "fraction",
    "creatinine",
    "rose",
    "overnight",
    "atrial",
    "fibrillation",
    "noted",
]


def rubric(*, by=None, guidelines: str = "Label what the latent detects, not what the note is about.") -> RubricVersion:
    return services.rubric_create(name=f"rubric-{next(_counter)}", guidelines=guidelines, concepts=CONCEPTS, by=by)


def sae_with_examples(
    *, n_latents: int = 6, institution=None, n_top: int = 6, n_snippets: int = 30, snippet_text=None
) -> SAE:
    """An SAE on a corpus (private to `institution` when given) whose latents have top, quantile and
    negative examples with per-token activations, a histogram, density and tag entropy."""
    name = f"corpus-{next(_counter)}"
    corpus = Corpus.objects.create(name=name, institution=institution, n_snippets=n_snippets)
    snippets = Snippet.objects.bulk_create(
        Snippet(
            corpus=corpus,
            external_id=f"s{i}",
            position=i,
            concept_tags=["HF"],
            text=snippet_text(i) if snippet_text else " ".join(WORDS[(i + j) % len(WORDS)] for j in range(12)),
        )
        for i in range(n_snippets)
    )
    sae = factories.sae(n_latents=0)
    activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model, hook_point=sae.hook_point, corpus=corpus, artifact_uri="/x"
    )
    sae.activation_set = activation_set
    sae.save(update_fields=["activation_set"])
    latents = Latent.objects.bulk_create(
        Latent(
            sae=sae,
            index=i,
            density=0.01 * (i + 1),
            max_activation=5.0,
            mean_activation=1.0,
            tag_entropy=0.1 * (n_latents - i),
            best_tag="HF",
            best_tag_r=0.8,
            histogram={"counts": [40 - j for j in range(0, 40, 2)], "edges": [0.1 * 1.2**j for j in range(21)]},
        )
        for i in range(n_latents)
    )
    examples = []
    for latent in latents:
        for rank in range(n_top):
            snippet = snippets[(latent.index * 3 + rank) % n_snippets]
            tokens = snippet.text.split()
            activations = [0.0] * len(tokens)
            activations[rank % len(tokens)] = 5.0 - rank * 0.5
            activations[(rank + 1) % len(tokens)] = 1.0
            examples.append(
                LatentExample(
                    latent=latent,
                    snippet=snippet,
                    kind="top",
                    rank=rank,
                    max_activation=max(activations),
                    tokens=tokens,
                    activations=activations,
                )
            )
        for bin_ in range(2):
            for k in range(2):
                snippet = snippets[(latent.index * 5 + bin_ * 2 + k + 10) % n_snippets]
                tokens = snippet.text.split()
                activations = [0.0] * len(tokens)
                activations[k] = 0.5 + bin_
                examples.append(
                    LatentExample(
                        latent=latent,
                        snippet=snippet,
                        kind="quantile",
                        rank=bin_,
                        max_activation=0.5 + bin_,
                        tokens=tokens,
                        activations=activations,
                    )
                )
        for k in range(6):
            snippet = snippets[(latent.index * 7 + k + 20) % n_snippets]
            tokens = snippet.text.split()
            examples.append(
                LatentExample(
                    latent=latent,
                    snippet=snippet,
                    kind="negative",
                    rank=k,
                    max_activation=0.0,
                    tokens=tokens,
                    activations=[0.0] * len(tokens),
                )
            )
    LatentExample.objects.bulk_create(examples)
    return sae


def raters(*, per_institution: dict, role: str = Role.PHYSICIAN) -> list:
    """{institution code: n} → users, in institution order."""
    users = []
    for code, n in per_institution.items():
        institution = factories.institution(code)
        users += [factories.user(role=role, institution_obj=institution) for _ in range(n)]
    return users


def coordinator(*, institution_code: str = "own"):
    return factories.user(role=Role.COORDINATOR, institution_obj=factories.institution(institution_code))


def make_round(
    *,
    by,
    sae: SAE,
    version: RubricVersion,
    institutions,
    raters_list=None,
    kind: str = "calibration",
    overlap: int = 3,
    repeat_fraction: float = 0.0,
    blind: bool = True,
    n_latents: int | None = None,
    rule: str = "hand",
    seed: int = 7,
    open_it: bool = True,
    parent=None,
    min_repeats: int = 3,
) -> Round:
    indices = list(sae.latents.order_by("index").values_list("index", flat=True))
    round_ = services.round_create(
        name=f"round-{next(_counter)}",
        kind=kind,
        sae=sae,
        rubric_version=version,
        institutions=institutions,
        overlap=overlap,
        repeat_fraction=repeat_fraction,
        blind=blind,
        selection_rule=rule,
        n_latents=n_latents,
        latent_indices=indices[:n_latents] if rule == "hand" and n_latents else indices,
        raters=raters_list,
        seed=seed,
        parent=parent,
        min_repeats=min_repeats,
        by=by,
    )
    if open_it:
        services.round_open(round=round_, by=by)
    return round_


def label_everything(round_: Round, *, choose, rationale: str = "The peak token names this clinical finding.") -> int:
    """Label every assignment of the round; `choose(assignment)` gives the concept code."""
    n = 0
    for assignment in Assignment.objects.filter(round=round_).select_related("round__rubric_version", "rater"):
        services.label_submit(
            assignment=assignment,
            concept_code=choose(assignment),
            confidence=4,
            rationale=f"{rationale} ({assignment.pk})",
            by=assignment.rater,
        )
        n += 1
    return n


def close_round(*, round, by):  # noqa: A002
    """Close the round, then run its statistics job here, as a worker would (the job itself is tested with a
    real worker in test_round_statistics_job.py)."""
    services.round_close(round=round, by=by)
    round.refresh_from_db()
    status = services.round_statistics_run(round_id=round.pk, token=round.statistics_token)
    round.refresh_from_db()
    assert status == "done", round.statistics_message
    return round
