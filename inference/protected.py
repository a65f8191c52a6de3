"""Protected-attribute scan of an SAE (issue 12): per-snippet latent maxima over its training corpus,
Pearson r with each protected tag the corpus carries (`Snippet.metadata["protected"]`), stored on the
latents. Runs after mining, as a job (`protected_scan`, launched from the report page or the API), or in
process (`manage.py protected_scan`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from features.models import SAE
from features.services import latents_store_protected

from .models import Job
from .progress import Progress


def protected_tag_matrix(snippet_metadata: list[dict]) -> tuple[np.ndarray, list[str]]:
    """[n_snippets, n_tags] 0/1 and the tag names, from each snippet's metadata["protected"]."""
    names = sorted({tag for metadata in snippet_metadata for tag in (metadata or {}).get("protected", [])})
    column = {name: j for j, name in enumerate(names)}
    tags = np.zeros((len(snippet_metadata), len(names)), dtype=np.float32)
    for i, metadata in enumerate(snippet_metadata):
        for tag in (metadata or {}).get("protected", []):
            tags[i, column[tag]] = 1.0
    return tags, names


def protected_scan(
    *,
    sae: SAE,
    snippet_max: np.ndarray | None = None,
    threshold: float | None = None,
    by=None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score and store every latent's protected associations; `snippet_max` [n_snippets, d_sae] from
    mining saves re-encoding the corpus. Nothing is stored until every latent is scored."""
    import torch

    from inference.engine.activations import ActivationStore
    from inference.engine.protected import ProtectedConfig, protected_associations
    from inference.runtime import device as resolve
    from inference.runtime import sae_loaded

    activation_set = sae.activation_set
    if activation_set is None:
        raise ValueError(f"SAE {sae.pk} has no training corpus to scan")
    metadata = list(activation_set.corpus.snippets.order_by("position").values_list("metadata", flat=True))
    tags, names = protected_tag_matrix(metadata)
    config = ProtectedConfig(**({"threshold": threshold} if threshold is not None else {}))
    if snippet_max is None and names:
        device = resolve()
        model = sae_loaded(sae=sae, device_name=str(device))
        store = ActivationStore.open(activation_set.artifact_uri, activation_set.hook_point.name)
        snippet_max = np.zeros((store.n_snippets, sae.d_sae), dtype=np.float32)
        done, n_tokens = 0, len(store)
        with torch.inference_mode():
            for batch in store.iter_batches(batch_tokens=4096):
                done += len(batch.snippet_index)
                if progress is not None:
                    progress(0.9 * done / max(n_tokens, 1), f"encoded {done} of {n_tokens} tokens")
                z = model.encode(torch.from_numpy(batch.activations).to(device)).float().cpu().numpy()
                starts = np.flatnonzero(np.r_[True, batch.snippet_index[1:] != batch.snippet_index[:-1]])
                snippet_max[batch.snippet_index[starts]] = np.maximum.reduceat(z, starts, axis=0)
    found = []
    if names:
        per_latent = protected_associations(snippet_max=snippet_max, tags=tags, tag_names=names, config=config)
        found = [
            (index, [{"tag": a.tag, "attribute": a.attribute, "r": round(a.r, 4)} for a in associations])
            for index, associations in enumerate(per_latent)
            if associations
        ]
    parameters = {
        "threshold": config.threshold,
        "min_tagged": config.min_tagged,
        "tags": names,
        "tag_counts": {name: int(tags[:, j].sum()) for j, name in enumerate(names)},
    }
    n_flagged = latents_store_protected(sae=sae, associations=found, parameters=parameters, by=by)
    return {**parameters, "n_flagged": n_flagged}


def protected_scan_work(job: Job, progress: Progress) -> dict[str, Any]:
    sae = SAE.objects.select_related("activation_set__corpus", "activation_set__hook_point").get(
        pk=job.parameters["sae_id"]
    )
    progress(0.0, f"scanning {sae.name}")
    result = protected_scan(sae=sae, threshold=job.parameters.get("threshold"), by=job.created_by, progress=progress)
    progress(1.0, f"{result['n_flagged']} latents flagged")
    return {"sae_id": sae.pk, **result}
