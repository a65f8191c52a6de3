"""Small factories for database tests: real rows, no mocks."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from accounts.models import Institution, Profile, Role
from features.models import SAE, Corpus, HookPoint, HostModel, Latent, Snippet

_counter = itertools.count(1)


def institution(code: str | None = None) -> Institution:
    code = code or f"inst{next(_counter)}"
    return Institution.objects.get_or_create(code=code, defaults={"name": f"Institution {code}"})[0]


def user(
    *,
    role: str = Role.PHYSICIAN,
    institution_obj: Institution | None = None,
    username: str | None = None,
    password: str = "correct-horse-battery",
):
    username = username or f"{role}{next(_counter)}"
    account = get_user_model().objects.create_user(username=username, password=password)
    Profile.objects.create(user=account, institution=institution_obj or institution(), role=role)
    if role == Role.ADMIN:
        account.is_staff = True
        account.save(update_fields=["is_staff"])
    return account


def corpus(*, name: str | None = None, institution_obj: Institution | None = None, n_snippets: int = 3) -> Corpus:
    created = Corpus.objects.create(name=name or f"corpus{next(_counter)}", institution=institution_obj)
    Snippet.objects.bulk_create(
        Snippet(
            corpus=created,
            external_id=f"s{i}",
            text=f"Snippet {i} of {created.name}.",
            position=i,
            concept_tags=["HF"] if i % 2 == 0 else [],
        )
        for i in range(n_snippets)
    )
    created.n_snippets = n_snippets
    created.save(update_fields=["n_snippets"])
    return created


def host_model(*, name: str | None = None, n_layers: int = 2, d_model: int = 8) -> HostModel:
    return HostModel.objects.create(
        name=name or f"model{next(_counter)}", source="local/tiny", kind="encoder", d_model=d_model, n_layers=n_layers
    )


def sae(*, hook: HookPoint | None = None, d_sae: int = 16, n_latents: int = 4) -> SAE:
    hook = hook or HookPoint.objects.create(
        host_model=host_model(), name="blocks.0.hook_resid_post", layer=0, site="resid_post"
    )
    created = SAE.objects.create(
        name=f"sae{next(_counter)}",
        hook_point=hook,
        architecture="topk",
        d_in=8,
        d_sae=d_sae,
        k=4,
        artifact_uri="/nonexistent",
    )
    Latent.objects.bulk_create(Latent(sae=created, index=i) for i in range(n_latents))
    return created
