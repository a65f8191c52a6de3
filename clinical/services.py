"""Write paths of the clinical pages: explaining a note (audited, stored only when asked), launching drift
audits and protected-attribute scans."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from accounts.audit import audit_record
from features.models import SAE, Corpus
from inference.models import Job

from .models import SavedNote
from .selectors import LatentLabel, concept_names, flow_saes, latent_labels

logger = logging.getLogger(__name__)
MAX_NOTE_CHARS = 20_000
DISCLAIMER = (
    "This is an audit of what the model represented in the note, read through labels that physicians "
    "gave its SAE latents. It is not a clinical finding and must not guide care."
)
_CLASS_ORDER = {"validated": 0, "consensus": 1, "ambiguous": 2, "unlabelled": 3}
EVIDENCE_SPANS = 3


class NoteRejected(ValueError):
    """The note cannot be explained (empty, too long, or the SAE has no usable weights)."""


@dataclass
class ConceptSummary:
    code: str
    name: str
    score: float  # strongest (activation / the latent's corpus max, capped at 1) × posterior, in [0, 1]
    uncertainty: str
    tokens: list[str]  # evidence spans of the note, strongest first
    token_indices: list[int]
    latent_indices: list[int]
    summary: str
    protected: bool = False


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

    def to_json(self, *, full: bool = True) -> dict[str, Any]:
        """The DESIGN §6 shape; `full` adds agreement, detection accuracy, protected flags, summaries
        and the per-layer flow (the API and the page)."""
        latent_keys = ("latent_id", "index", "activation", "label", "posterior", "uncertainty")
        concept_keys = ("code", "name", "score", "uncertainty", "tokens")
        if not full:
            return {
                "tokens": [
                    {
                        "text": t["text"],
                        "start": t["start"],
                        "end": t["end"],
                        "latents": [{key: latent[key] for key in latent_keys} for latent in t["latents"]],
                    }
                    for t in self.tokens
                ],
                "concepts": [{key: getattr(c, key) for key in concept_keys} for c in self.concepts],
            }
        return {
            "sae_id": self.sae_id,
            "sha256": self.sha256,
            "disclaimer": self.disclaimer,
            "tokens": self.tokens,
            "concepts": [asdict(c) for c in self.concepts],
            "layers": [asdict(layer) for layer in self.layers],
            "n_withheld": self.n_withheld,
            "seconds": self.seconds,
            "saved_note_id": self.saved_note_id,
        }


def _phrase(label: LatentLabel) -> str:
    if label.uncertainty == "ambiguous":
        return f"physicians disagreed ({label.n_labels} labels; this reading {label.posterior or 0:.2f})"
    if label.adjudicated:
        basis = "decided by a senior physician"
    else:
        basis = f"consensus of {label.n_labels} physicians, {label.posterior or 0:.2f}"
    if label.uncertainty == "validated":
        basis += f"; validated by detection ({label.detection_accuracy:.0%} correct)"
    return basis


def _spans(text: str, tokens: list[dict], strength: dict[int, float]) -> list[tuple[str, float, list[int]]]:
    """Runs of consecutive tokens carrying the concept, as note text, strongest first."""
    runs: list[list[int]] = []
    for position in sorted(strength):
        if runs and runs[-1][-1] == position - 1:
            runs[-1].append(position)
        else:
            runs.append([position])
    spans = [
        (text[tokens[run[0]]["start"] : tokens[run[-1]]["end"]], max(strength[p] for p in run), run) for run in runs
    ]
    return sorted(spans, key=lambda span: -span[1])


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
                label.label, {"name": label.name, "best": (-1.0, None), "strength": {}, "latents": set()}
            )
            entry["latents"].add(label.index)
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
        concepts.append(
            ConceptSummary(
                code=code,
                name=entry["name"],
                score=round(score, 4),
                uncertainty=label.uncertainty,
                tokens=[span for span, _, _ in spans],
                token_indices=sorted(entry["strength"]),
                latent_indices=sorted(entry["latents"]),
                summary=f"represented {entry['name']} on {quoted} — {_phrase(label)}",
                protected=code in protected_codes,
            )
        )
    return sorted(concepts, key=lambda c: (-c.score, c.code))


def note_explain(
    *, sae: SAE, text: str, by=None, store: bool = False, flow: bool = False, ip: str | None = None, via: str = "web"
) -> Explanation:
    """Explain `text` with `sae` (and, with `flow`, the other SAEs on its host model). The caller has
    checked that `by` may see `sae`. The note is kept only when `store`; the audit log keeps who, when,
    which SAE and the note's SHA-256, never the text."""
    from inference.engine.explain import ExplainConfig, explain_note
    from inference.runtime import device as resolve
    from inference.runtime import host_model_loaded, sae_loaded

    if not text.strip():
        raise NoteRejected("the note is empty")
    if len(text) > MAX_NOTE_CHARS:
        raise NoteRejected(f"the note has {len(text)} characters; explain at most {MAX_NOTE_CHARS} at once")
    if not sae.artifact_uri:
        raise NoteRejected(f"SAE {sae.pk} has no weights on disk")
    started = time.perf_counter()
    layers = flow_saes(sae=sae, user=by) if flow else [sae]
    device = resolve()
    try:
        handle = host_model_loaded(host_model=sae.hook_point.host_model, device_name=str(device))
        models = {layer.hook_point.name: sae_loaded(sae=layer, device_name=str(device)) for layer in layers}
    except (OSError, ValueError) as error:  # missing files, a malformed SAE directory (SAEFormatError)
        logger.warning("explain: SAE %s or its host model cannot be loaded: %s", sae.pk, error)
        raise NoteRejected("this SAE's weights or its host model cannot be loaded on this server") from None
    result = explain_note(
        handle=handle,
        encoders={name: model.encode for name, model in models.items()},
        text=text,
        device=device,
        config=ExplainConfig(),
    )
    tokens = [{"text": t.text, "start": t.start, "end": t.end, "by_hook": t.latents} for t in result.tokens]
    per_layer = []
    main_labels: dict[int, LatentLabel] = {}
    n_withheld = 0
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
    hook = sae.hook_point.name
    token_rows = []
    for token in tokens:
        latents = []
        for latent in token["by_hook"][hook]:
            label = main_labels.get(latent.index)
            latents.append(
                {
                    "latent_id": label.latent_id if label else None,
                    "index": latent.index,
                    "activation": round(latent.activation, 5),
                    "label": label.label if label else None,
                    "posterior": label.posterior if label else None,
                    "uncertainty": label.uncertainty if label else "unlabelled",
                    "name": label.name if label else None,
                    "agreement": label.agreement if label else None,
                    "detection_accuracy": label.detection_accuracy if label else None,
                    "protected": label.protected if label else [],
                    "relative": round(min(latent.activation / label.max_activation, 1.0), 4)
                    if label and label.max_activation > 0
                    else None,
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
    )
    if store and by is not None and getattr(by, "is_authenticated", False):
        explanation.saved_note_id = SavedNote.objects.create(owner=by, sae=sae, text=text, sha256=digest).pk
    audit_record(
        actor=by,
        action="note.explain",
        obj=sae,
        ip=ip,
        payload={
            "sha256": digest,
            "n_chars": len(text),
            "n_tokens": len(token_rows),
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
