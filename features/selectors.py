"""Read paths for the catalogue, each filtered by what the caller may see (features.access decides)."""
from __future__ import annotations

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
