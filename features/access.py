"""Who may read and who may write each catalogue resource: one queryset function per resource and direction.

Every list, detail, input field, job launcher, page and admin of the catalogue asks here. A row outside
the queryset does not exist for that user: a foreign id answers 404, or the same validation error as an
id that was never created. The rule under all of them (docs/access.md): a private corpus and everything
derived from it (activation sets, SAEs, latents, examples) exist only for its institution; shared rows
(no institution) for everyone with a role; admins see everything.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import Institution, Role
from accounts.permissions import JOB_RUNNERS, corpora_visible_to, has_role, institution_of, role_of, saes_visible_to

from .models import SAE, ActivationSet, Corpus, HookPoint, HostModel, Latent, LatentExample, Snippet


def institutions_readable(user) -> QuerySet[Institution]:
    """Institution names and codes are public to every user with a role (rounds span institutions)."""
    return Institution.objects.all() if role_of(user) is not None else Institution.objects.none()


def institutions_writable(user) -> QuerySet[Institution]:
    """Institutions the user may put private data into: admins any, job runners their own only."""
    role = role_of(user)
    if role == Role.ADMIN:
        return Institution.objects.all()
    if role in JOB_RUNNERS and institution_of(user) is not None:
        return Institution.objects.filter(pk=institution_of(user).pk)
    return Institution.objects.none()


def corpora_readable(user) -> QuerySet[Corpus]:
    return corpora_visible_to(user, Corpus.objects.select_related("institution"))


def corpora_writable(user) -> QuerySet[Corpus]:
    """Corpora a job may read or derive from (cache activations): the job runner's readable corpora."""
    return corpora_readable(user) if has_role(user, JOB_RUNNERS) else Corpus.objects.none()


def snippets_readable(user) -> QuerySet[Snippet]:
    return corpora_visible_to(user, Snippet.objects.select_related("corpus"), prefix="corpus__")


def host_models_readable(user) -> QuerySet[HostModel]:
    return HostModel.objects.all() if role_of(user) is not None else HostModel.objects.none()


def host_models_writable(user) -> QuerySet[HostModel]:
    """Host models are public catalogue entries: any job runner may capture activations from one."""
    return HostModel.objects.all() if has_role(user, JOB_RUNNERS) else HostModel.objects.none()


def hook_points_readable(user) -> QuerySet[HookPoint]:
    return HookPoint.objects.select_related("host_model") if role_of(user) is not None else HookPoint.objects.none()


def activation_sets_readable(user) -> QuerySet[ActivationSet]:
    return corpora_visible_to(
        user, ActivationSet.objects.select_related("corpus", "hook_point", "host_model"), prefix="corpus__"
    )


def activation_sets_writable(user) -> QuerySet[ActivationSet]:
    """Activation sets a job may train on: the job runner's readable ones."""
    return activation_sets_readable(user) if has_role(user, JOB_RUNNERS) else ActivationSet.objects.none()


def saes_readable(user) -> QuerySet[SAE]:
    """SAEs trained on a corpus the user may not see stay hidden with that corpus."""
    return saes_visible_to(user, SAE.objects.select_related("hook_point__host_model"))


def saes_writable(user) -> QuerySet[SAE]:
    """SAEs a job may rewrite (mine latents): the job runner's readable ones."""
    return saes_readable(user) if has_role(user, JOB_RUNNERS) else SAE.objects.none()


def latents_readable(user) -> QuerySet[Latent]:
    return saes_visible_to(user, Latent.objects.select_related("sae"), prefix="sae__")


def examples_readable(user) -> QuerySet[LatentExample]:
    """Examples of visible latents whose snippet the user may also see."""
    examples = saes_visible_to(user, LatentExample.objects.select_related("snippet__corpus"), prefix="latent__sae__")
    return corpora_visible_to(user, examples, prefix="snippet__corpus__")


def corpus_name_taken(*, name: str, institution: Institution | None) -> bool:
    """Corpus names are unique per institution (and among shared corpora): a clash is only ever with a
    corpus the importing institution can already see, so it never reveals another one's private corpus."""
    if institution is None:
        return Corpus.objects.filter(name=name, institution__isnull=True).exists()
    return Corpus.objects.filter(Q(institution=institution) | Q(institution__isnull=True), name=name).exists()
