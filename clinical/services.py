"""Write paths of the clinical pages: explaining a note (audited, stored only when asked), the notes a user
kept, launching drift audits and protected-attribute scans."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.audit import audit_record
from features.models import SAE, Corpus
from features.phi import scrub_phi
from inference.models import Job

from .models import SavedNote
from .selectors import LatentLabel, concept_names, flow_saes, latent_labels

logger = logging.getLogger(__name__)
DISCLAIMER = (
    "This is an audit of what the model represented in the note, read through labels that physicians "
    "gave its SAE latents. It is not a clinical finding and must not guide care."
)
_CLASS_ORDER = {"validated": 0, "consensus": 1, "ambiguous": 2, "unlabelled": 3}
EVIDENCE_SPANS = 3
_WORD = re.compile(r"\w")


def max_note_chars() -> int:
    """The longest note explained at once (settings.CLINICAL_MAX_NOTE_CHARS)."""
    return int(settings.CLINICAL_MAX_NOTE_CHARS)


class NoteRejected(ValueError):
    """The note cannot be explained (empty, too long, the SAE has no usable weights, or the model failed
    on it): the API answers 400 and the page shows the message."""


@dataclass
class ConceptSummary:
    code: str
    name: str
    score: float  # strongest (activation / the latent's corpus max, capped at 1) × posterior, in [0, 1]
    uncertainty: str
    tokens: list[str]  # evidence spans of the note, widened to whole words, strongest first
    token_indices: list[int]
    latent_indices: list[int]
    summary: str
    protected: bool = False  # a protected concept, or one of its latents is tied to a protected attribute
    protected_attributes: list[str] = field(default_factory=list)  # attributes its latents are tied to


@dataclass
class LayerExplanation:
    sae_id: int
    sae_name: str
    hook_name: str
    layer: int
    concepts: list[ConceptSummary]


@dataclass
class Explanation:
    sae_id: int
    sha256: str
    tokens: list[dict]  # text, start, end, latents [{latent_id, index, activation, label, posterior, uncertainty, ...}]
    concepts: list[ConceptSummary]
    layers: list[LayerExplanation] = field(default_factory=list)
    n_withheld: int = 0
    seconds: float = 0.0
    saved_note_id: int | None = None
    disclaimer: str = DISCLAIMER
    n_windows: int = 0  # windows the note was cut into (the host model's position limit)
    window_tokens: int = 0  # the note's tokens per window, special tokens not counted
    stride: int = 0  # tokens consecutive windows share
    protected_attributes: list[str] = field(default_factory=list)  # represented in the note, sorted

    @property
    def notice(self) -> str | None:
        """A plain sentence when the note did not fit one window of the host model."""
        if self.n_windows <= 1:
            return None
        return (
            f"This note was split into {self.n_windows} windows of {self.window_tokens} tokens "
            f"(consecutive windows share {self.stride} tokens; each token is read in the window where it "
            "is most central), because the host model reads at most that many tokens at once."
        )

    @property
    def summary(self) -> list[str]:
        """The concepts represented, strongest first, in words a clinician reads."""
        return [concept.summary for concept in self.concepts]

    def to_json(self) -> dict[str, Any]:
        """The shape of `explain_note --json` and of the API (docs/interfaces.md)."""
        return {
            "sae_id": self.sae_id,
            "sha256": self.sha256,
            "disclaimer": self.disclaimer,
            "notice": self.notice,
            "n_windows": self.n_windows,
            "window_tokens": self.window_tokens,
            "stride": self.stride,
            "tokens": self.tokens,
            "concepts": [asdict(c) for c in self.concepts],
            "summary": self.summary,
            "protected_attributes": self.protected_attributes,
            "layers": [asdict(layer) for layer in self.layers],
            "n_withheld": self.n_withheld,
            "seconds": self.seconds,
            "saved_note_id": self.saved_note_id,
        }


def _who(label: LatentLabel) -> str:
    """Who the consensus rests on: distinct raters (hidden repeats are not people), and whether they were
    the demo's simulated raters."""
    if label.n_raters <= 0:  # a row from before n_raters was recorded
        return f"{label.n_labels} label{'s' if label.n_labels != 1 else ''}"
    if label.simulated == "all":
        return f"{label.n_raters} simulated raters (demo)"
    if label.simulated == "some":
        return f"{label.n_raters} raters, some of them simulated (demo)"
    return f"{label.n_raters} physician{'s' if label.n_raters != 1 else ''}"


def _phrase(label: LatentLabel) -> str:
    if label.uncertainty == "ambiguous":
        return f"ambiguous: {_who(label)} disagreed (this reading {label.posterior or 0:.2f})"
    if label.adjudicated:
        basis = "decided by a senior physician"
    else:
        basis = f"consensus of {_who(label)}, {label.posterior or 0:.2f}"
    if label.uncertainty == "validated":
        basis += f"; validated by detection ({label.detection_accuracy:.0%} correct)"
    return basis


def _word_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) to whole words: a span that starts or ends inside a word ('othyr' of
    'Hypothyroidism') takes the rest of that word."""
    while 0 < start < len(text) and _WORD.match(text[start - 1]) and _WORD.match(text[start]):
        start -= 1
    while 0 < end < len(text) and _WORD.match(text[end - 1]) and _WORD.match(text[end]):
        end += 1
    return start, end


def _spans(text: str, tokens: list[dict], strength: dict[int, float]) -> list[tuple[str, float, list[int]]]:
    """Runs of consecutive tokens carrying the concept, widened to whole words and merged where they then
    touch, as note text, strongest first."""
    runs: list[list[int]] = []
    for position in sorted(strength):
        if runs and runs[-1][-1] == position - 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    merged: list[list] = []  # [start, end, strength, positions]
    for run in runs:
        start, end = _word_bounds(text, tokens[run[0]]["start"], tokens[run[-1]]["end"])
        value = max(strength[p] for p in run)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] = max(merged[-1][2], value)
            merged[-1][3].extend(run)
        else:
            merged.append([start, end, value, list(run)])
    spans = [(text[start:end], value, run) for start, end, value, run in merged]
    return sorted(spans, key=lambda span: -span[1])


def _attributes(label: LatentLabel) -> set[str]:
    return {str(a.get("attribute") or str(a.get("tag", "")).split(":")[0]) for a in label.protected} - {""}


def _concepts(
    text: str, tokens: list[dict], labels: dict[int, LatentLabel], hook: str, protected_codes: set[str]
) -> list[ConceptSummary]:
    by_code: dict[str, dict] = {}
    for position, token in enumerate(tokens):
        for latent in token["by_hook"][hook]:
            label = labels.get(latent.index)
            if label is None or label.label is None or label.reserved:
                continue
            relative = min(latent.activation / label.max_activation, 1.0) if label.max_activation > 0 else 1.0
            weight = relative * (label.posterior if label.posterior is not None else 1.0)
            entry = by_code.setdefault(
                label.label,
                {"name": label.name, "best": (-1.0, None), "strength": {}, "latents": set(), "attributes": set()},
            )
            entry["latents"].add(label.index)
            entry["attributes"] |= _attributes(label)
            entry["strength"][position] = max(entry["strength"].get(position, 0.0), weight)
            best_weight, best_label = entry["best"]
            if weight > best_weight or (
                weight == best_weight and _CLASS_ORDER[label.uncertainty] < _CLASS_ORDER[best_label.uncertainty]
            ):
                entry["best"] = (weight, label)
    concepts = []
    for code, entry in by_code.items():
        score, label = entry["best"]
        spans = _spans(text, tokens, entry["strength"])[:EVIDENCE_SPANS]
        quoted = ", ".join(f"'{span}'" for span, _, _ in spans)
        attributes = sorted(entry["attributes"])
        summary = f"represented {entry['name']} on {quoted} — {_phrase(label)}"
        if code in protected_codes:
            summary += "; a protected attribute"
        if attributes:
            summary += f"; its latents are tied to protected attributes ({', '.join(attributes)})"
        concepts.append(
            ConceptSummary(
                code=code,
                name=entry["name"],
                score=round(score, 4),
                uncertainty=label.uncertainty,
                tokens=[span for span, _, _ in spans],
                token_indices=sorted(entry["strength"]),
                latent_indices=sorted(entry["latents"]),
                summary=summary,
                protected=code in protected_codes or bool(attributes),
                protected_attributes=attributes,
            )
        )
    return sorted(concepts, key=lambda c: (-c.score, c.code))


def _latent_fields(index: int, label: LatentLabel | None) -> tuple[dict, float]:
    """A fired latent's row in the explanation, less its activation, and its corpus maximum (0: none)."""
    if label is None:
        return {
            "latent_id": None,
            "index": index,
            "label": None,
            "posterior": None,
            "uncertainty": "unlabelled",
            "name": None,
            "agreement": None,
            "detection_accuracy": None,
            "n_raters": 0,
            "n_labels": 0,
            "simulated": "none",
            "protected": [],
        }, 0.0
    return {
        "latent_id": label.latent_id,
        "index": index,
        "label": label.label,
        "posterior": label.posterior,
        "uncertainty": label.uncertainty,
        "name": label.name,
        "agreement": label.agreement,
        "detection_accuracy": label.detection_accuracy,
        "n_raters": label.n_raters,
        "n_labels": label.n_labels,
        "simulated": label.simulated,
        "protected": label.protected,
    }, label.max_activation


def _saved_note_cutoff():
    return timezone.now() - timedelta(days=int(settings.CLINICAL_SAVED_NOTE_DAYS))


def saved_notes_purge() -> int:
    """Delete kept notes older than CLINICAL_SAVED_NOTE_DAYS; runs on every explanation and listing (one
    indexed DELETE), so no scheduler is needed for retention."""
    deleted, _ = SavedNote.objects.filter(created_at__lt=_saved_note_cutoff()).delete()
    return deleted


def saved_note_delete(*, note: SavedNote, by) -> None:
    """The owner deletes a note they kept (the caller has checked ownership)."""
    audit_record(actor=by, action="note.delete", obj=note.sae, payload={"sha256": note.sha256, "note": note.pk})
    note.delete()


def note_explain(
    *, sae: SAE, text: str, by=None, store: bool = False, flow: bool = False, ip: str | None = None, via: str = "web"
) -> Explanation:
    """Explain `text` with `sae` (and, with `flow`, the other SAEs on its host model). The caller has
    checked that `by` may see `sae`. The note is kept only when `store` (PHI-scrubbed: dates, phone and
    record numbers); the audit log keeps who, when, which SAE and the note's SHA-256, never the text.
    Whatever cannot be explained raises NoteRejected with a sentence for the user."""
    from inference.engine.explain import ExplainConfig, explain_note
    from inference.runtime import device as resolve
    from inference.runtime import host_model_loaded, sae_loaded

    if not text.strip():
        raise NoteRejected("the note is empty")
    if len(text) > max_note_chars():
        raise NoteRejected(
            f"the note has {len(text)} characters; explain at most {max_note_chars()} at once "
            "(split it, or ask an administrator to raise CLINICAL_MAX_NOTE_CHARS)"
        )
    if not sae.artifact_uri:
        raise NoteRejected(f"SAE {sae.pk} has no weights on disk")
    started = time.perf_counter()
    layers = flow_saes(sae=sae, user=by) if flow else [sae]
    device = resolve()
    try:
        handle = host_model_loaded(host_model=sae.hook_point.host_model, device_name=str(device))
        models = {layer.hook_point.name: sae_loaded(sae=layer, device_name=str(device)) for layer in layers}
    except Exception as error:  # missing files, a malformed SAE directory, weights of the wrong shape
        logger.warning("explain: SAE %s or its host model cannot be loaded: %s", sae.pk, error)
        raise NoteRejected("this SAE's weights or its host model cannot be loaded on this server") from None
    try:
        result = explain_note(
            handle=handle,
            encoders={name: model.encode for name, model in models.items()},
            text=text,
            device=device,
            config=ExplainConfig(),
        )
    except Exception as error:  # any failure of the model on this note is a refusal, never a server error
        logger.exception("explain: SAE %s failed on a note of %d characters", sae.pk, len(text))
        raise NoteRejected(
            f"the model could not process this note ({type(error).__name__}); try a shorter or plainer note"
        ) from None
    tokens = [{"text": t.text, "start": t.start, "end": t.end, "by_hook": t.latents} for t in result.tokens]
    per_layer = []
    main_labels: dict[int, LatentLabel] = {}
    main_concepts: list[ConceptSummary] = []
    n_withheld = 0
    protected_attributes: set[str] = set()
    for layer in layers:
        hook = layer.hook_point.name
        fired = {latent.index for token in tokens for latent in token["by_hook"][hook]}
        labels = latent_labels(sae=layer, indices=fired, user=by)
        protected_codes = {code for code, (_, protected) in concept_names(sae=layer).items() if protected}
        concepts = _concepts(text, tokens, labels, hook, protected_codes)
        per_layer.append(
            LayerExplanation(
                sae_id=layer.pk, sae_name=layer.name, hook_name=hook, layer=layer.hook_point.layer, concepts=concepts
            )
        )
        if layer.pk == sae.pk:
            main_labels, main_concepts = labels, concepts
            n_withheld = sum(1 for label in labels.values() if label.withheld)
            protected_attributes = {c.code for c in concepts if c.code in protected_codes}
            for label in labels.values():
                protected_attributes |= _attributes(label)
    hook = sae.hook_point.name
    token_rows = []
    described: dict[int, tuple[dict, float]] = {}  # index -> (what does not change per token, corpus max)
    for token in tokens:
        latents = []
        for index, activation in token["by_hook"][hook]:
            if index not in described:
                described[index] = _latent_fields(index, main_labels.get(index))
            fields, maximum = described[index]
            latents.append(
                {
                    **fields,
                    "activation": round(activation, 5),
                    "relative": round(min(activation / maximum, 1.0), 4) if maximum > 0 else None,
                }
            )
        token_rows.append({"text": token["text"], "start": token["start"], "end": token["end"], "latents": latents})
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    explanation = Explanation(
        sae_id=sae.pk,
        sha256=digest,
        tokens=token_rows,
        concepts=main_concepts,
        layers=per_layer if len(per_layer) > 1 else [],
        n_withheld=n_withheld,
        seconds=round(time.perf_counter() - started, 4),
        n_windows=result.n_windows,
        window_tokens=result.window_tokens,
        stride=result.stride,
        protected_attributes=sorted(protected_attributes),
    )
    saved_notes_purge()
    if store and by is not None and getattr(by, "is_authenticated", False):
        explanation.saved_note_id = SavedNote.objects.create(owner=by, sae=sae, text=scrub_phi(text), sha256=digest).pk
    audit_record(
        actor=by,
        action="note.explain",
        obj=sae,
        ip=ip,
        payload={
            "sha256": digest,
            "n_chars": len(text),
            "n_tokens": len(token_rows),
            "n_windows": result.n_windows,
            "saes": [layer.pk for layer in layers],
            "stored": explanation.saved_note_id is not None,
            "via": via,
        },
    )
    return explanation


def drift_audit_start(
    *,
    sae: SAE,
    corpus: Corpus,
    reference: Corpus | None = None,
    thresholds: dict | None = None,
    by=None,
    enqueue: bool = True,
) -> Job:
    from inference.services import drift_audit_request

    return drift_audit_request(
        sae=sae, corpus=corpus, reference=reference, thresholds=thresholds, by=by, enqueue=enqueue
    )


def protected_scan_start(*, sae: SAE, threshold: float | None = None, by=None, enqueue: bool = True) -> Job:
    """Queue a protected-attribute scan of `sae` (a `protected_scan` job: it encodes the whole training
    corpus, so never in a web request); BrokerUnavailable when the queue does not answer, nothing written."""
    from inference.services import protected_scan_request

    return protected_scan_request(sae=sae, threshold=threshold, by=by, enqueue=enqueue)


def protected_scan_run(*, sae: SAE, threshold: float | None = None, by=None) -> dict:
    """The scan in this process (`manage.py protected_scan`)."""
    from inference.protected import protected_scan

    return protected_scan(sae=sae, threshold=threshold, by=by)
