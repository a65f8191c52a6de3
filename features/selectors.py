"""Read paths for the catalogue, each filtered by what the caller may see."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.permissions import corpora_visible_to, role_of

from .models import SAE, ActivationSet, Corpus, HookPoint, HostModel, Latent, LatentExample, Snippet


def corpus_list(*, user) -> QuerySet[Corpus]:
    return corpora_visible_to(user, Corpus.objects.select_related("institution"))


def snippet_list(*, user, corpus_id: int | None = None) -> QuerySet[Snippet]:
    queryset = corpora_visible_to(user, Snippet.objects.select_related("corpus"), prefix="corpus__")
    return queryset.filter(corpus_id=corpus_id) if corpus_id is not None else queryset


def host_model_list(*, user) -> QuerySet[HostModel]:
    return HostModel.objects.all() if role_of(user) else HostModel.objects.none()


def hook_point_list(*, user) -> QuerySet[HookPoint]:
    return HookPoint.objects.select_related("host_model") if role_of(user) else HookPoint.objects.none()


def activation_set_list(*, user) -> QuerySet[ActivationSet]:
    return corpora_visible_to(
        user, ActivationSet.objects.select_related("corpus", "hook_point", "host_model"), prefix="corpus__"
    )


def sae_list(*, user) -> QuerySet[SAE]:
    """SAEs trained on a corpus the caller may not see stay hidden with that corpus."""
    visible_corpora = corpus_list(user=user).values("pk")
    return SAE.objects.select_related("hook_point__host_model").filter(
        Q(activation_set__isnull=True) | Q(activation_set__corpus__in=visible_corpora)
    )


def latent_list(*, user, sae_id: int | None = None) -> QuerySet[Latent]:
    queryset = Latent.objects.filter(sae__in=sae_list(user=user).values("pk")).select_related("sae")
    return queryset.filter(sae_id=sae_id) if sae_id is not None else queryset


def latent_examples(*, latent: Latent, user) -> QuerySet[LatentExample]:
    return corpora_visible_to(
        user, latent.examples.select_related("snippet__corpus"), prefix="snippet__corpus__"
    ).order_by("kind", "rank")

