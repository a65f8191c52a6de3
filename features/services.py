"""Write paths for the catalogue: corpora, host models, hook points, activation sets, SAEs, latents."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import Institution

from .corpus_files import CorpusFormatError, count_lines, read_corpus_file
from .models import Corpus, HookPoint, HostModel, Snippet
from .phi import scrub_phi

Progress = Callable[[float, str], None]
_HOOK_NAME = re.compile(r"^blocks\.(\d+)\.hook_(resid_post|mlp_out|attn_out)$")
_BATCH = 1000


def corpus_import(*, path: Path, name: str, by=None, description: str = "", licence: str = "",
                  institution: Institution | None = None, deidentified: bool = False, scrub: bool = False,
                  phi_names: Iterable[str] = (), progress: Progress | None = None) -> Corpus:
    """Import a JSONL or CSV corpus in one transaction: a bad line fails the import and keeps nothing."""
    if not name.strip():
        raise CorpusFormatError("the corpus needs a name")
    if Corpus.objects.filter(name=name).exists():
        raise CorpusFormatError(f"a corpus named '{name}' already exists")
    total = max(count_lines(path), 1)
    names = list(phi_names)
    with transaction.atomic():
        corpus = Corpus.objects.create(
            name=name, description=description, licence=licence, institution=institution,
            deidentified=deidentified or scrub,
        )
        batch: list[Snippet] = []
        position = 0
        for record in read_corpus_file(path):
            text = scrub_phi(record.text, names=names) if scrub else record.text
            batch.append(Snippet(corpus=corpus, external_id=record.external_id, text=text,
                                 metadata=record.metadata, concept_tags=list(record.concept_tags),
                                 position=position))
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
        audit_record(actor=by, action="corpus.import", obj=corpus,
                     payload={"file": Path(path).name, "n_snippets": position, "scrub_phi": scrub})
    if progress:
        progress(1.0, f"imported {position} snippets")
    return corpus


def host_model_register(*, name: str, source: str, kind: str, d_model: int, n_layers: int,
                        revision: str = "", by=None) -> HostModel:
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
        raise ValueError(
            f"hook point '{name}' is not blocks.{{L}}.hook_resid_post, hook_mlp_out or hook_attn_out"
        )
    layer = int(match.group(1))
    if layer >= host_model.n_layers:
        raise ValueError(f"hook point '{name}': {host_model.name} has layers 0..{host_model.n_layers - 1}")
    hook_point, created = HookPoint.objects.get_or_create(
        host_model=host_model, name=name, defaults={"layer": layer, "site": match.group(2)}
    )
    if created:
        audit_record(actor=by, action="hook_point.create", obj=hook_point)
    return hook_point
