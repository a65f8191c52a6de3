"""Write paths for the catalogue: corpora, host models, hook points, activation sets, SAEs, latents."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accounts.audit import audit_record
from accounts.models import Institution

from .access import corpus_name_taken
from .corpus_files import CorpusFormatError, count_lines, read_corpus_file
from .models import SAE, ActivationSet, Corpus, HookPoint, HostModel, Latent, LatentExample, Snippet
from .phi import scrub_phi

Progress = Callable[[float, str], None]
_HOOK_NAME = re.compile(r"^blocks\.(\d+)\.hook_(resid_post|mlp_out|attn_out)$")
_BATCH = 1000


def corpus_import(
    *,
    path: Path,
    name: str,
    by=None,
    description: str = "",
    licence: str = "",
    institution: Institution | None = None,
    deidentified: bool = False,
    scrub: bool = False,
    phi_names: Iterable[str] = (),
    progress: Progress | None = None,
) -> Corpus:
    """Import a JSONL or CSV corpus in one transaction: a bad line fails the import and keeps nothing."""
    if not name.strip():
        raise CorpusFormatError("the corpus needs a name")
    if corpus_name_taken(name=name, institution=institution):
        raise CorpusFormatError(f"a corpus named '{name}' already exists")
    total = max(count_lines(path), 1)
    names = list(phi_names)
    with transaction.atomic():
        corpus = Corpus.objects.create(
            name=name,
            description=description,
            licence=licence,
            institution=institution,
            deidentified=deidentified or scrub,
        )
        batch: list[Snippet] = []
        position = 0
        for record in read_corpus_file(path, max_text_chars=settings.MAX_SNIPPET_CHARS):
            text = scrub_phi(record.text, names=names) if scrub else record.text
            batch.append(
                Snippet(
                    corpus=corpus,
                    external_id=record.external_id,
                    text=text,
                    metadata=record.metadata,
                    concept_tags=list(record.concept_tags),
                    position=position,
                )
            )
            position += 1
            if len(batch) >= _BATCH:
                Snippet.objects.bulk_create(batch)
                batch.clear()
                if progress:
                    progress(min(record.line / total, 0.99), f"{position} snippets read")
        Snippet.objects.bulk_create(batch)
        if position == 0:
            raise CorpusFormatError(f"{Path(path).name}: the file holds no snippets")
        corpus.n_snippets = position
        corpus.save(update_fields=["n_snippets"])
        audit_record(
            actor=by,
            action="corpus.import",
            obj=corpus,
            payload={"file": Path(path).name, "n_snippets": position, "scrub_phi": scrub},
        )
    if progress:
        progress(1.0, f"imported {position} snippets")
    return corpus


def host_model_register(
    *, name: str, source: str, kind: str, d_model: int, n_layers: int, revision: str = "", by=None
) -> HostModel:
    host_model, created = HostModel.objects.get_or_create(
        name=name,
        defaults={"source": source, "revision": revision, "kind": kind, "d_model": d_model, "n_layers": n_layers},
    )
    if created:
        audit_record(actor=by, action="host_model.register", obj=host_model, payload={"source": source})
    return host_model


def hook_point_get_or_create(*, host_model: HostModel, name: str, by=None) -> HookPoint:
    match = _HOOK_NAME.match(name)
    if match is None:
        raise ValueError(f"hook point '{name}' is not blocks.{{L}}.hook_resid_post, hook_mlp_out or hook_attn_out")
    layer = int(match.group(1))
    if layer >= host_model.n_layers:
        raise ValueError(f"hook point '{name}': {host_model.name} has layers 0..{host_model.n_layers - 1}")
    hook_point, created = HookPoint.objects.get_or_create(
        host_model=host_model, name=name, defaults={"layer": layer, "site": match.group(2)}
    )
    if created:
        audit_record(actor=by, action="hook_point.create", obj=hook_point)
    return hook_point


def activation_set_create(
    *,
    host_model: HostModel,
    hook_point: HookPoint,
    corpus: Corpus,
    artifact_uri: str,
    n_tokens: int,
    dtype: str,
    normalisation: dict,
    source_job_id: int | None = None,
    by=None,
) -> ActivationSet:
    activation_set = ActivationSet.objects.create(
        host_model=host_model,
        hook_point=hook_point,
        corpus=corpus,
        artifact_uri=artifact_uri,
        n_tokens=n_tokens,
        dtype=dtype,
        normalisation=normalisation,
        source_job_id=source_job_id,
    )
    audit_record(
        actor=by,
        action="activation_set.create",
        obj=activation_set,
        payload={"n_tokens": n_tokens, "corpus": corpus.pk, "hook": hook_point.name},
    )
    return activation_set


def sae_register(
    *,
    name: str,
    hook_point: HookPoint,
    architecture: str,
    d_in: int,
    d_sae: int,
    artifact_uri: str,
    activation_set: ActivationSet | None = None,
    k: int | None = None,
    l1_coefficient: float | None = None,
    normalisation: dict | None = None,
    hyperparameters: dict | None = None,
    metrics: dict | None = None,
    source_job_id: int | None = None,
    sweep_group: str = "",
    by=None,
) -> SAE:
    """Record a trained or imported SAE; its latents are created empty, ready for mining."""
    if SAE.objects.filter(name=name).exists():
        raise ValueError(f"an SAE named '{name}' already exists")
    with transaction.atomic():
        sae = SAE.objects.create(
            name=name,
            hook_point=hook_point,
            activation_set=activation_set,
            architecture=architecture,
            d_in=d_in,
            d_sae=d_sae,
            k=k,
            l1_coefficient=l1_coefficient,
            normalisation=normalisation or {},
            hyperparameters=hyperparameters or {},
            metrics=metrics or {},
            artifact_uri=artifact_uri,
            source_job_id=source_job_id,
            sweep_group=sweep_group,
        )
        Latent.objects.bulk_create((Latent(sae=sae, index=i) for i in range(d_sae)), batch_size=5000)
        audit_record(
            actor=by,
            action="sae.register",
            obj=sae,
            payload={"architecture": architecture, "d_sae": d_sae, "metrics": metrics or {}},
        )
    return sae


def latents_store_mining(*, sae: SAE, latents: Iterable[dict], by=None, progress: Progress | None = None) -> int:
    """Replace the SAE's latent statistics and examples with a mining pass's results, atomically.

    Each dict: index, density, max_activation, mean_activation, histogram, and examples: a list of
    dicts with snippet_id, kind, rank, max_activation, tokens, activations."""
    latents = list(latents)
    with transaction.atomic():
        by_index = {latent.index: latent for latent in sae.latents.all()}
        LatentExample.objects.filter(latent__sae=sae).delete()
        examples: list[LatentExample] = []
        for position, summary in enumerate(latents):
            latent = by_index.get(summary["index"])
            if latent is None:
                raise ValueError(f"SAE {sae.name} has no latent {summary['index']}")
            latent.density = summary["density"]
            latent.max_activation = summary["max_activation"]
            latent.mean_activation = summary["mean_activation"]
            latent.histogram = summary["histogram"]
            examples.extend(
                LatentExample(
                    latent=latent,
                    snippet_id=example["snippet_id"],
                    kind=example["kind"],
                    rank=example["rank"],
                    max_activation=max(example["max_activation"], 0.0),
                    tokens=example["tokens"],
                    activations=example["activations"],
                )
                for example in summary["examples"]
            )
            if len(examples) >= 5000:
                LatentExample.objects.bulk_create(examples)
                examples.clear()
            if progress and position % 256 == 0:
                progress(position / max(len(latents), 1), f"stored {position} latents")
        LatentExample.objects.bulk_create(examples)
        Latent.objects.bulk_update(
            by_index.values(), ["density", "max_activation", "mean_activation", "histogram"], batch_size=2000
        )
        audit_record(actor=by, action="sae.mine", obj=sae, payload={"n_latents": len(latents)})
    return len(latents)


def latents_store_logit_effects(*, sae: SAE, rows: Iterable[tuple[int, dict]], by=None) -> None:
    """Store each latent's top raised and lowered output tokens (causal hosts; computed at mining)."""
    by_index = {latent.index: latent for latent in sae.latents.all()}
    for index, effects in rows:
        by_index[index].logit_effects = effects
    Latent.objects.bulk_update(by_index.values(), ["logit_effects"], batch_size=2000)
    audit_record(actor=by, action="sae.logit_effects", obj=sae)


def latents_store_monosemanticity(
    *, sae: SAE, rows: Iterable[tuple[int, str, float | None, float | None]], by=None
) -> None:
    """Store each latent's best concept tag, its Pearson r and the tag entropy (MedSAE)."""
    by_index = {latent.index: latent for latent in sae.latents.all()}
    for index, best_tag, best_r, entropy in rows:
        latent = by_index[index]
        latent.best_tag, latent.best_tag_r, latent.tag_entropy = best_tag or "", best_r, entropy
    Latent.objects.bulk_update(by_index.values(), ["best_tag", "best_tag_r", "tag_entropy"], batch_size=2000)
    audit_record(actor=by, action="sae.monosemanticity", obj=sae)


def latents_store_protected(
    *, sae: SAE, associations: Iterable[tuple[int, list[dict]]], parameters: dict, by=None
) -> int:
    """Store each latent's protected-attribute associations (issue 12); latents not listed get none.
    Returns how many latents are flagged."""
    found = dict(associations)
    with transaction.atomic():  # all latents and the SAE's scan summary, or nothing
        latents = list(sae.latents.all())
        for latent in latents:
            latent.protected_associations = found.get(latent.index, [])
        Latent.objects.bulk_update(latents, ["protected_associations"], batch_size=2000)
        n_flagged = sum(1 for latent in latents if latent.protected_associations)
        sae.metrics = {**sae.metrics, "protected": {**parameters, "n_flagged": n_flagged}}
        sae.save(update_fields=["metrics"])
        audit_record(actor=by, action="sae.protected_scan", obj=sae, payload={**parameters, "n_flagged": n_flagged})
    return n_flagged
