"""The drift-audit job (issue 12): capture a corpus at an SAE's hook point if needed, then compare its
latent statistics with the reference corpus's (`inference.engine.drift`). Kept in one module so that
the job machinery only needs one entry per registry."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from features.models import SAE, ActivationSet, Corpus
from features.services import activation_set_create

from .engine.drift_config import DRIFT_CONFIG_KEYS, DriftConfig
from .jobs import artifact_dir, committing
from .models import Job
from .progress import Progress


def drift_config_check(values: dict[str, Any] | None) -> dict[str, float]:
    """The thresholds of one audit: settings.DRIFT_THRESHOLDS (the platform's defaults, set by DRIFT_<NAME>
    environment variables) with this audit's overrides on top, validated (no torch import: the web process
    calls this)."""
    overrides = {key: float(value) for key, value in (values or {}).items() if value is not None}
    unknown = sorted(set(overrides) - set(DRIFT_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown drift thresholds: {', '.join(unknown)}")
    defaults = {key: float(value) for key, value in settings.DRIFT_THRESHOLDS.items() if key in DRIFT_CONFIG_KEYS}
    return DriftConfig(**{**defaults, **overrides}).to_dict()


def _store_for(*, sae: SAE, corpus: Corpus, job: Job, max_length: int, device, progress: Progress, span):
    """The corpus's activations at the SAE's hook point: an existing capture, else a new one in the job's
    own folder (`activations/<job uuid>-corpus-<corpus id>`). Returns the store and, for a new capture,
    the activation set's fields, registered only when the job commits (so the next audit reuses it, and
    a cancelled or reaped audit registers nothing)."""
    import numpy as np

    from inference.engine.activations import ActivationStore, mean_and_scale
    from inference.engine.hooks import capture_activations
    from inference.runtime import host_model_loaded

    hook_point = sae.hook_point
    for existing in ActivationSet.objects.filter(hook_point=hook_point, corpus=corpus).order_by("-created_at"):
        if (Path(existing.artifact_uri) / "manifest.json").is_file():
            return ActivationStore.open(existing.artifact_uri, hook_point.name), None
    texts = list(corpus.snippets.order_by("position").values_list("text", flat=True))
    if not texts:
        raise ValueError(f"corpus {corpus.name} has no snippets")
    handle = host_model_loaded(host_model=hook_point.host_model, device_name=str(device))
    out_dir = artifact_dir("activations", f"{job.uuid}-corpus-{corpus.pk}")
    if out_dir.exists():  # this job's own folder, left by an earlier attempt: the capture restarts
        shutil.rmtree(out_dir)
    lo, hi = span
    manifest = capture_activations(
        handle=handle,
        texts=texts,
        hook_names=[hook_point.name],
        batch_size=32,
        max_length=max_length,
        device=device,
        out_dir=out_dir,
        dtype=np.float16,
        progress=lambda f, m: progress(lo + (hi - lo) * f, f"capturing {corpus.name}: {m}"),
    )
    store = ActivationStore.open(out_dir, hook_point.name)
    stats = mean_and_scale(store)
    pending = {
        "host_model": hook_point.host_model,
        "hook_point": hook_point,
        "corpus": corpus,
        "artifact_uri": str(out_dir),
        "n_tokens": manifest.n_tokens,
        "dtype": "float16",
        "normalisation": {"mean": [float(v) for v in stats.mean], "scale": float(stats.scale)},
        "source_job_id": job.pk,
        "by": job.created_by,
    }
    return store, pending


def drift_audit_work(job: Job, progress: Progress) -> dict[str, Any]:
    import torch

    from inference.engine.activations import ActivationManifest
    from inference.engine.drift import compare_corpora, corpus_statistics
    from inference.runtime import device as resolve
    from inference.runtime import sae_loaded

    params = job.parameters
    sae = SAE.objects.select_related("hook_point__host_model", "activation_set").get(pk=params["sae_id"])
    corpus, reference = Corpus.objects.get(pk=params["corpus_id"]), Corpus.objects.get(pk=params["reference_id"])
    device = resolve()
    started = time.perf_counter()
    max_length = 128
    if sae.activation_set is not None and (Path(sae.activation_set.artifact_uri) / "manifest.json").is_file():
        # capture the new corpus exactly as the training corpus was captured
        max_length = ActivationManifest.load(sae.activation_set.artifact_uri).max_length or max_length
    model = sae_loaded(sae=sae, device_name=str(device))
    statistics, captured = {}, []
    for position, (name, which) in enumerate((("reference", reference), ("corpus", corpus))):
        span = (0.5 * position, 0.5 * position + 0.35)
        store, pending = _store_for(
            sae=sae, corpus=which, job=job, max_length=max_length, device=device, progress=progress, span=span
        )
        captured.extend([pending] if pending else [])
        progress(span[1], f"encoding {which.name}")
        statistics[name] = corpus_statistics(
            batches=(torch.from_numpy(batch.activations) for batch in store.iter_batches(batch_tokens=4096)),
            encode=model.encode,
            decode=model.decode,
            device=device,
        )
    report = compare_corpora(
        reference=statistics["reference"], corpus=statistics["corpus"], config=DriftConfig(**params.get("config", {}))
    )
    progress(1.0, "compared")
    result = {
        "sae_id": sae.pk,
        "corpus_id": corpus.pk,
        "reference_id": reference.pk,
        "seconds": round(time.perf_counter() - started, 3),
        "report": drift_report_summary(report),
    }
    with committing(progress, result) as result:  # new captures are registered with the job's success, or never
        for fields in captured:
            activation_set_create(**fields)
        result["rates_uri"] = str(drift_rates_write(job=job, statistics=statistics))
    return result


# --- what an audit keeps (issue 12, item 9) -------------------------------------------------------------

DRIFT_RATES_FILE = "rates.npz"


def drift_report_summary(report) -> dict[str, Any]:
    """The report as Job.result keeps it: the measures, the decision and the flagged latents, with every
    latent's two rates binned into the page's rate-against-rate grid (`rate_histogram`) instead of listed
    (two lists of d_sae floats were 420 KB at 2048 latents, megabytes at 131k)."""
    from inference.engine.rate_grid import rate_histogram

    data = report.to_dict()
    rates_reference, rates_corpus = data.pop("rates_reference"), data.pop("rates_corpus")
    data["rate_histogram"] = rate_histogram(rates_reference, rates_corpus)
    return data


def drift_rates_write(*, job: Job, statistics: dict) -> Path:
    """Every latent's firing count and rate on both corpora, and both active-count histograms, as
    `drift/<job uuid>/rates.npz` under ARTIFACT_ROOT (written whole, then renamed into place). Called inside
    the job's commit, so a cancelled audit leaves no artifact behind a result that names it."""
    import numpy as np

    out_dir = artifact_dir("drift", str(job.uuid))
    out_dir.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in ("reference", "corpus"):
        stats = statistics[name]
        arrays[f"firing_counts_{name}"] = stats.firing_counts
        arrays[f"rates_{name}"] = stats.rates
        arrays[f"l0_histogram_{name}"] = stats.l0_histogram
        arrays[f"n_tokens_{name}"] = np.int64(stats.n_tokens)
    path = out_dir / DRIFT_RATES_FILE
    partial = out_dir / f".{DRIFT_RATES_FILE}.partial"
    with partial.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    partial.replace(path)
    return path


def drift_rates_read(path: str | Path) -> dict:
    """The arrays `drift_rates_write` stored (numpy arrays; the token counts as ints)."""
    import numpy as np

    with np.load(path) as data:
        return {key: (int(data[key]) if key.startswith("n_tokens") else data[key]) for key in data.files}
