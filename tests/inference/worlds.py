"""A small activation set on disk, registered like a captured one: what sweeps and benchmarks train on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings

from features.models import ActivationSet, HookPoint
from tests import factories

HOOK = "blocks.0.hook_resid_post"


def synthetic_activation_set(
    *, n_snippets: int = 40, tokens_per_snippet: int = 12, d_in: int = 8, seed: int = 0
) -> ActivationSet:
    """Sparse non-negative activations over a factory corpus (half its snippets tagged HF)."""
    rng = np.random.default_rng(seed)
    corpus = factories.corpus(n_snippets=n_snippets)
    host = factories.host_model(d_model=d_in)
    hook = HookPoint.objects.create(host_model=host, name=HOOK, layer=0, site="resid_post")
    n = n_snippets * tokens_per_snippet
    x = (rng.exponential(size=(n, d_in)) * (rng.random((n, d_in)) < 0.4)).astype(np.float32)
    snippet_index = np.repeat(np.arange(n_snippets), tokens_per_snippet)
    x[snippet_index % 2 == 0, 0] += 2.0  # the tagged snippets carry a direction of their own
    directory = Path(settings.ARTIFACT_ROOT) / "activations" / f"synthetic-{corpus.pk}"
    from inference.engine.activations import write_activation_arrays

    write_activation_arrays(
        directory,
        activations={HOOK: x},
        snippet_index=snippet_index,
        n_snippets=n_snippets,
        token_ids=rng.integers(0, 20, size=n),
        vocabulary={i: f"w{i}" for i in range(20)},
    )
    return ActivationSet.objects.create(
        host_model=host,
        hook_point=hook,
        corpus=corpus,
        artifact_uri=str(directory),
        n_tokens=n,
        dtype="float32",
        normalisation={"mean": [float(v) for v in x.mean(axis=0)], "scale": 1.0},
    )


def spent_job(kind, *, by, seconds: float, kwh: float, method: str = "estimated", sweep=None, **parameters):
    """A succeeded job that used `seconds` of device time and `kwh` (CO₂ at 0.4 kg/kWh, $3 a device-hour)."""
    from inference.models import Job
    from inference.services import job_create

    job = job_create(kind=kind, parameters=parameters, enqueue=False, by=by, sweep=sweep)
    Job.objects.filter(pk=job.pk).update(
        status="succeeded",
        attempts=1,
        device_seconds=seconds,
        energy_kwh=kwh,
        co2_kg=kwh * 0.4,
        cost=seconds / 3600 * 3,
        energy_method=method,
    )
    return Job.objects.get(pk=job.pk)
