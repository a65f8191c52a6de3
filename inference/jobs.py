"""Job bodies: each turns a Job's parameters into calls of the pure engine and the catalogue services.

They run on Celery workers (the one task in `tasks.py` runs a job by id) or in a management command's
process; torch and transformers are imported inside each body so that the web process never loads them.
A body writes its outputs inside `committing(progress, result)`: one transaction that also marks the
job succeeded, so a cancelled or reaped job never registers anything. Folders are named by the job's
UUID, never its primary key.
"""

from __future__ import annotations

import math
import shutil
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from django.conf import settings

from accounts.models import Institution
from features.models import SAE, ActivationSet, Corpus, HookPoint, HostModel
from features.services import (
    activation_set_create,
    corpus_import,
    latents_store_logit_effects,
    latents_store_mining,
    latents_store_monosemanticity,
    sae_register,
)

from .models import Job
from .progress import JobReporter, Progress
from .uploads import upload_discard


def artifact_dir(*parts: str) -> Path:
    return Path(settings.ARTIFACT_ROOT).joinpath(*parts)


def _device():
    from inference.engine.devices import resolve_device

    return resolve_device(settings.CONCORD_DEVICE)


def _record(progress: Progress, **fields: Any) -> None:
    """Bookkeeping on the job row (device, checkpoint folder) when the body runs under a JobReporter."""
    if isinstance(progress, JobReporter):
        progress.record(**fields)


def committing(progress: Progress, result: dict[str, Any]) -> AbstractContextManager[dict[str, Any]]:
    """The outputs and the success of the job in one transaction (see JobReporter.commit)."""
    return progress.commit(result) if isinstance(progress, JobReporter) else nullcontext(result)


def import_corpus_work(job: Job, progress: Progress) -> dict[str, Any]:
    params = job.parameters
    institution = Institution.objects.get(code=params["institution"]) if params.get("institution") else None
    _record(progress, device="cpu")
    try:
        with committing(progress, {}) as result:
            corpus = corpus_import(
                path=Path(params["path"]),
                name=params["name"],
                by=job.created_by,
                scrub=params.get("scrub_phi", False),
                phi_names=params.get("phi_names", []),
                institution=institution,
                description=params.get("description", ""),
                licence=params.get("licence", ""),
                progress=progress,
            )
            result.update(corpus_id=corpus.pk, n_snippets=corpus.n_snippets)
    finally:  # an uploaded file is not kept once imported or refused (a command's own file is not an upload)
        upload_discard(path=Path(params["path"]))
    return result


def cache_activations_work(job: Job, progress: Progress) -> dict[str, Any]:
    import numpy as np

    from inference.engine.activations import ActivationStore, mean_and_scale
    from inference.engine.hooks import capture_activations
    from inference.engine.host_models import load_host_model

    params = job.parameters
    host_model = HostModel.objects.get(pk=params["host_model_id"])
    hook_point = HookPoint.objects.get(pk=params["hook_point_id"])
    corpus = Corpus.objects.get(pk=params["corpus_id"])
    texts = list(corpus.snippets.order_by("position").values_list("text", flat=True))
    out_dir = artifact_dir("activations", str(job.uuid))
    if out_dir.exists():  # a redelivered job: the capture restarts from an empty folder
        shutil.rmtree(out_dir)
    device = _device()
    _record(progress, device=str(device))
    progress(0.0, f"loading {host_model.source}")
    handle = load_host_model(
        source=host_model.source, revision=host_model.revision or None, device=device, kind=host_model.kind
    )
    manifest = capture_activations(
        handle=handle,
        texts=texts,
        hook_names=[hook_point.name],
        batch_size=params.get("batch_size", 32),
        max_length=params.get("max_length", 128),
        device=device,
        out_dir=out_dir,
        dtype=np.dtype(params.get("dtype", "float16")).type,
        progress=lambda f, m: progress(0.95 * f, m),
    )
    store = ActivationStore.open(out_dir, hook_point.name)
    progress(0.96, "normalisation statistics")
    stats = mean_and_scale(store)
    with committing(progress, {"n_tokens": manifest.n_tokens, "artifact_uri": str(out_dir)}) as result:
        activation_set = activation_set_create(
            host_model=host_model,
            hook_point=hook_point,
            corpus=corpus,
            artifact_uri=str(out_dir),
            n_tokens=manifest.n_tokens,
            dtype=str(store.dtype),
            normalisation={"mean": [float(v) for v in stats.mean], "scale": float(stats.scale)},
            source_job_id=job.pk,
            by=job.created_by,
        )
        result["activation_set_id"] = activation_set.pk
    return result


def sae_config_from_parameters(params: dict[str, Any], d_in: int):
    from inference.engine.saes import config_from_dict

    fields: dict[str, Any] = {"architecture": params["arch"], "d_in": d_in, "d_sae": params["width"]}
    if params["arch"] in ("topk", "batchtopk", "matryoshka") and params.get("k"):
        fields["k"] = params["k"]
    if params["arch"] == "relu" and params.get("l1") is not None:
        fields["l1_coefficient"] = params["l1"]
    if params["arch"] == "jumprelu" and params.get("l1") is not None:
        fields["l0_coefficient"] = params["l1"]
    if params["arch"] == "matryoshka":
        width = params["width"]
        fields["widths"] = params.get("widths") or sorted({max(width // 8, 1), max(width // 4, 1), width // 2, width})
    return config_from_dict(fields)


def training_config_from_parameters(params: dict[str, Any]):
    from inference.engine.training import TrainingConfig

    keys = ("steps", "batch_size", "lr", "seed", "checkpoint_every", "warmup_steps", "sparsity_warmup_steps")
    return TrainingConfig(
        **{key: params[key] for key in keys if params.get(key) is not None},
        device=params.get("device") or settings.CONCORD_DEVICE,
    )


def _activations_for(params: dict[str, Any]):
    import numpy as np

    from inference.engine.activations import ActivationStore

    if params.get("activation_set_id"):
        activation_set = ActivationSet.objects.select_related("hook_point").get(pk=params["activation_set_id"])
        return activation_set, ActivationStore.open(activation_set.artifact_uri, activation_set.hook_point.name)
    array = np.load(params["activations_path"], mmap_mode="r", allow_pickle=False)
    return None, array


def train_sae_work(job: Job, progress: Progress) -> dict[str, Any]:
    from inference.engine.formats import save_sae
    from inference.engine.training import train_sae

    params = job.parameters
    activation_set, activations = _activations_for(params)
    sae_cfg = sae_config_from_parameters(params, activations.shape[1])
    train_cfg = training_config_from_parameters(params).for_width(sae_cfg.d_sae)  # records the lr it used
    checkpoint_dir = artifact_dir("checkpoints", str(job.uuid))
    _record(progress, checkpoint_uri=str(checkpoint_dir), device=str(train_cfg.device))
    result = train_sae(
        sae_cfg=sae_cfg, train_cfg=train_cfg, activations=activations, checkpoint_dir=checkpoint_dir, progress=progress
    )
    out_dir = Path(params.get("out") or artifact_dir("saes", str(job.uuid)))
    metadata: dict[str, Any] = {
        "training": train_cfg.to_dict(),
        "metrics": result.metrics,
        "concord_job_id": job.pk,
        "concord_job_uuid": str(job.uuid),
    }
    if activation_set is not None:
        metadata.update(model_name=activation_set.host_model.source, hook_name=activation_set.hook_point.name)
    if activation_set is not None and activation_set.host_model.kind == HostModel.Kind.CAUSAL:
        progress(0.99, "CE-loss recovered with the SAE spliced in")
        result.metrics.update(
            _ce_loss_metrics(activation_set=activation_set, result=result, n_texts=params.get("ce_texts") or 64)
        )
    save_sae(sae=result.sae, normalisation=result.normalisation, directory=out_dir, metadata=metadata)
    device = next(result.sae.parameters()).device
    _record(progress, device=str(device))
    output: dict[str, Any] = {
        "metrics": result.metrics,
        "artifact_uri": str(out_dir),
        "steps": result.steps_done,
        "device_seconds": result.device_seconds,
    }
    with committing(progress, output):
        if activation_set is not None:
            sae = sae_register(
                name=params.get("name")
                or f"{activation_set.hook_point.name} {params['arch']} {params['width']} job{job.pk}",
                hook_point=activation_set.hook_point,
                activation_set=activation_set,
                architecture=params["arch"],
                d_in=sae_cfg.d_in,
                d_sae=sae_cfg.d_sae,
                k=params.get("k"),
                l1_coefficient=params.get("l1"),
                normalisation=result.normalisation.to_dict(),
                hyperparameters={**sae_cfg.to_dict(), **train_cfg.to_dict()},
                metrics=result.metrics,
                artifact_uri=str(out_dir),
                source_job_id=job.pk,
                sweep_group=params.get("sweep_group", ""),
                by=job.created_by,
            )
            output["sae_id"] = sae.pk
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return output


def _ce_loss_metrics(*, activation_set: ActivationSet, result, n_texts: int) -> dict[str, float]:
    """(L_zero − L_sae) / (L_zero − L_clean) on the first `n_texts` snippets of the training corpus."""
    import torch

    from inference.engine.host_models import load_host_model
    from inference.engine.metrics import ce_loss_recovered
    from inference.engine.saes import NormalisedSAE

    host_model = activation_set.host_model
    device = next(result.sae.parameters()).device
    handle = load_host_model(
        source=host_model.source, revision=host_model.revision or None, device=device, kind=host_model.kind
    )
    model = NormalisedSAE(result.sae, result.normalisation).to(device).eval()
    texts = list(activation_set.corpus.snippets.order_by("position").values_list("text", flat=True)[:n_texts])

    @torch.no_grad()
    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        return model(x)

    ce = ce_loss_recovered(
        handle=handle,
        texts=texts,
        hook_name=activation_set.hook_point.name,
        reconstruct=reconstruct,
        batch_size=16,
        max_length=128,
        device=device,
    )
    return {
        "ce_loss_clean": ce.clean,
        "ce_loss_with_sae": ce.with_sae,
        "ce_loss_zero_ablated": ce.zero_ablated,
        "ce_loss_recovered": ce.recovered,
    }


def mine_latents_work(job: Job, progress: Progress) -> dict[str, Any]:
    import numpy as np
    import torch

    from inference.engine.activations import ActivationStore, snippet_max_activations
    from inference.engine.formats import load_sae
    from inference.engine.metrics import monosemanticity
    from inference.engine.mining import MiningConfig, mine_latents
    from inference.engine.saes import NormalisedSAE

    sae_row = SAE.objects.select_related("activation_set__hook_point", "activation_set__corpus").get(
        pk=job.parameters["sae_id"]
    )
    activation_set = sae_row.activation_set
    if activation_set is None:
        raise ValueError(f"SAE {sae_row.pk} has no activation set to mine; import or cache one first")
    device = _device()
    _record(progress, device=str(device))
    loaded = load_sae(sae_row.artifact_uri)
    model = NormalisedSAE(loaded.sae, loaded.normalisation).to(device).eval()
    store = ActivationStore.open(activation_set.artifact_uri, activation_set.hook_point.name)
    snippets = list(activation_set.corpus.snippets.order_by("position").values_list("pk", "concept_tags"))
    if len(snippets) != store.n_snippets:
        raise ValueError(f"the corpus has {len(snippets)} snippets but the activations {store.n_snippets}")

    @torch.no_grad()
    def encode(x: torch.Tensor) -> torch.Tensor:
        return model.encode(x.to(device))

    config = MiningConfig(n_top=job.parameters.get("n_top", 20), window=job.parameters.get("window", 24))
    result = mine_latents(
        store=store, encode=encode, config=config, device=device, progress=lambda f, m: progress(0.8 * f, m)
    )
    snippet_ids = [pk for pk, _ in snippets]
    logit_rows = None
    if activation_set.host_model.kind == HostModel.Kind.CAUSAL:
        progress(0.8, "logit effects: each latent's decoder direction through the unembedding")
        logit_rows = list(_logit_effect_rows(activation_set.host_model, loaded, device))
    progress(0.82, "monosemanticity")
    concepts = sorted({tag for _, tags in snippets for tag in tags})
    summary: dict[str, Any] = {"n_latents": len(result.latents), "n_tokens": result.n_tokens}
    latent_scores = None
    if len(concepts) >= 2:  # monosemanticity spreads |r| over concepts: one concept has no entropy to measure
        tags = np.zeros((len(snippets), len(concepts)), dtype=np.float32)
        column = {code: j for j, code in enumerate(concepts)}
        for i, (_, snippet_tags) in enumerate(snippets):
            for tag in snippet_tags:
                tags[i, column[tag]] = 1.0
        latent_scores = monosemanticity(snippet_max=result.snippet_max, tags=tags, concept_names=concepts)
        neuron_scores = monosemanticity(snippet_max=snippet_max_activations(store), tags=tags, concept_names=concepts)
        best_r = np.nan_to_num(np.asarray(latent_scores.best_r, dtype=float), nan=0.0)
        summary["monosemanticity"] = {
            "sae_mean_entropy": float(latent_scores.mean_entropy),
            "neuron_mean_entropy": float(neuron_scores.mean_entropy),
            "n_latents_r_ge_0_5": int((best_r >= 0.5).sum()),
            "n_scored": int(latent_scores.n_scored),
        }
    with committing(progress, summary):
        latents_store_mining(
            sae=sae_row,
            by=job.created_by,
            latents=(
                {
                    "index": s.index,
                    "density": s.density,
                    "max_activation": s.max_activation,
                    "mean_activation": s.mean_activation,
                    "histogram": {"counts": s.histogram.counts, "edges": s.histogram.edges},
                    "examples": [
                        {
                            "snippet_id": snippet_ids[e.snippet_index],
                            "kind": e.kind,
                            "rank": e.rank_or_bin,
                            "max_activation": e.max_activation,
                            "tokens": e.tokens,
                            "activations": e.activations,
                        }
                        for e in s.examples
                    ],
                }
                for s in result.latents
            ),
            progress=lambda f, m: progress(0.85 + 0.1 * f, m),
        )
        if latent_scores is not None:
            latents_store_monosemanticity(
                sae=sae_row,
                by=job.created_by,
                rows=(
                    (
                        i,
                        latent_scores.best_concept[i],
                        _finite(latent_scores.best_r[i]),
                        _finite(latent_scores.entropy[i]),
                    )
                    for i in range(len(result.latents))
                ),
            )
            sae_row.metrics = {**sae_row.metrics, "monosemanticity": summary["monosemanticity"]}
            sae_row.save(update_fields=["metrics"])
        if logit_rows is not None:
            latents_store_logit_effects(sae=sae_row, by=job.created_by, rows=logit_rows)
        from .protected import protected_scan  # issue 12: protected-attribute flags from the same maxima

        summary["protected"] = protected_scan(sae=sae_row, snippet_max=result.snippet_max, by=job.created_by)
    return summary


def _logit_effect_rows(host_model, loaded, device, k: int = 10):
    """(latent index, {'raised': [...], 'lowered': [...], 'method': ...}) for every latent of a loaded SAE."""
    from inference.engine.host_models import (
        load_host_model,
        unembedding_with_final_norm,
    )
    from inference.engine.mining import logit_effects

    handle = load_host_model(
        source=host_model.source, revision=host_model.revision or None, device=device, kind=host_model.kind
    )
    unembedding, centre, method = unembedding_with_final_norm(handle.model)
    # Raw-space direction of one unit of latent i: W_dec[i] / scale (the normalisation's inverse).
    directions = loaded.sae.W_dec.detach().to(device) / loaded.normalisation.scale
    effects = logit_effects(directions=directions, unembedding=unembedding, centre=centre, k=k)
    tokenizer = handle.tokenizer
    del handle, unembedding

    def entries(ids, values):
        return [
            {"token": tokenizer.decode([int(i)]), "id": int(i), "logit": round(float(v), 4)}
            for i, v in zip(ids.tolist(), values.tolist(), strict=False)
        ]

    for index in range(effects.raised.shape[0]):
        yield (
            index,
            {
                "raised": entries(effects.raised_ids[index], effects.raised[index]),
                "lowered": entries(effects.lowered_ids[index], effects.lowered[index]),
                "method": method,
            },
        )


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
