"""Read paths for the catalogue, each filtered by what the caller may see (features.access decides)."""

from __future__ import annotations

import functools
from pathlib import Path

from django.db.models import QuerySet

from . import access
from .models import SAE, ActivationSet, Corpus, HookPoint, HostModel, Latent, LatentExample, Snippet


def corpus_list(*, user) -> QuerySet[Corpus]:
    return access.corpora_readable(user)


def snippet_list(*, user, corpus_id: int | None = None) -> QuerySet[Snippet]:
    queryset = access.snippets_readable(user)
    return queryset.filter(corpus_id=corpus_id) if corpus_id is not None else queryset


def host_model_list(*, user) -> QuerySet[HostModel]:
    return access.host_models_readable(user)


def hook_point_list(*, user) -> QuerySet[HookPoint]:
    return access.hook_points_readable(user)


def activation_set_list(*, user) -> QuerySet[ActivationSet]:
    return access.activation_sets_readable(user)


def sae_list(*, user) -> QuerySet[SAE]:
    """SAEs trained on a corpus the caller may not see stay hidden with that corpus."""
    return access.saes_readable(user)


def latent_list(*, user, sae_id: int | None = None) -> QuerySet[Latent]:
    queryset = access.latents_readable(user)
    return queryset.filter(sae_id=sae_id) if sae_id is not None else queryset


def latent_examples(*, latent: Latent, user) -> QuerySet[LatentExample]:
    return access.examples_readable(user).filter(latent=latent).order_by("kind", "rank")


# -- decoder-cosine neighbours ----------------------------------------------------------------------

NEIGHBOURS = 8


# Two decoders per web process: a 32k × 768 float32 decoder is ~100 MB.
@functools.lru_cache(maxsize=2)
def _unit_decoder(path: str, modified: float):
    """W_dec [d_sae, d_in] of an SAE directory with unit rows, read once per file version. numpy and
    safetensors only: the web process never loads torch."""
    import numpy as np
    from safetensors.numpy import load_file

    decoder = load_file(path)["W_dec"].astype(np.float32)
    norms = np.linalg.norm(decoder, axis=1, keepdims=True)
    return decoder / np.where(norms > 0, norms, 1.0)


def latent_neighbours(*, latent: Latent, k: int = NEIGHBOURS) -> list[tuple[Latent, float]]:
    """The k latents of the same SAE whose decoder directions are closest by cosine, closest first;
    empty when the SAE's weights file is not on this machine."""
    import numpy as np

    path = Path(latent.sae.artifact_uri) / "sae_weights.safetensors"
    if not latent.sae.artifact_uri or not path.is_file():
        return []
    decoder = _unit_decoder(str(path), path.stat().st_mtime)
    if latent.index >= decoder.shape[0]:
        return []
    cosines = decoder @ decoder[latent.index]
    cosines[latent.index] = -np.inf
    k = min(k, decoder.shape[0] - 1)
    if k <= 0:
        return []
    nearest = np.argpartition(-cosines, k - 1)[:k]
    nearest = nearest[np.argsort(-cosines[nearest])]
    by_index = {other.index: other for other in Latent.objects.filter(sae_id=latent.sae_id, index__in=nearest.tolist())}
    return [(by_index[int(i)], float(cosines[i])) for i in nearest if int(i) in by_index]
