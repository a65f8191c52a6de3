"""The one registry of job kinds: for each, the queue it runs on and the body that does the work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import drift, jobs, protected, steering
from .models import Job
from .progress import Progress

Work = Callable[[Job, Progress], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    kind: str
    queue: str  # "gpu" when the body wants an accelerator, else "cpu"
    work: Work


KINDS: dict[str, JobKind] = {
    spec.kind: spec
    for spec in (
        JobKind(Job.Kind.IMPORT_CORPUS, "cpu", jobs.import_corpus_work),
        JobKind(Job.Kind.CACHE_ACTIVATIONS, "gpu", jobs.cache_activations_work),
        JobKind(Job.Kind.TRAIN_SAE, "gpu", jobs.train_sae_work),
        JobKind(Job.Kind.MINE_LATENTS, "gpu", jobs.mine_latents_work),
        JobKind(Job.Kind.DRIFT_AUDIT, "gpu", drift.drift_audit_work),  # issue 12: runs the host model
        JobKind(Job.Kind.STEER, "gpu", steering.steering_work),  # issue 13: generates with the host model
        JobKind(Job.Kind.PROTECTED_SCAN, "gpu", protected.protected_scan_work),  # issue 12: encodes the corpus
    )
}


def job_kind(kind: str) -> JobKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown job kind '{kind}'") from None
