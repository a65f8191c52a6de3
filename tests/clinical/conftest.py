"""Fixtures of the clinical tests: a tiny host model and SAE saved to disk (fast), and the MiniLM world
(slow, built once per session); both registered as catalogue rows per test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from accounts.models import Role
from features.models import (
    SAE,
    ActivationSet,
    Corpus,
    HookPoint,
    HostModel,
    Latent,
    Snippet,
)
from tests import factories

TINY_HOOK = "blocks.1.hook_resid_post"
TINY_TEXTS = [
    "patient reports chest pain radiating to the left arm with diaphoresis and nausea",
    "she denies fever , history of type two diabetes on metformin",
    "he has shortness of breath on exertion , no fever",
]


@pytest.fixture(scope="session")
def tiny_files(tmp_path_factory) -> dict[str, Path]:
    """A tiny BERT (word-level tokenizer) and a TopK SAE at its layer 1, in the formats Concord loads."""
    from inference.engine.formats import save_sae
    from inference.engine.saes import Normalisation, build_sae, config_from_dict
    from tests.inference.engine.tiny_hosts import TEXTS, tiny_bert

    root = tmp_path_factory.mktemp("tiny-host")
    handle = tiny_bert(TEXTS + TINY_TEXTS)
    handle.model.save_pretrained(root / "model")
    handle.tokenizer.save_pretrained(root / "model")
    saes = {}
    for layer in (0, 1):
        sae = build_sae(config_from_dict({"architecture": "topk", "d_in": 32, "d_sae": 64, "k": 4}), seed=layer)
        saes[layer] = save_sae(
            sae=sae.eval(), normalisation=Normalisation.identity(32), directory=root / f"sae-{layer}"
        )
    return {"model": root / "model", "sae0": saes[0], "sae1": saes[1]}


@dataclass
class TinyWorld:
    host_model: HostModel
    sae: SAE  # layer 1, trained (as far as anyone knows) on a private corpus of `home`
    shallow_sae: SAE  # layer 0, same corpus
    home: object  # the institution owning the corpus
    corpus: Corpus


def register_tiny(files: dict[str, Path], *, institution=None) -> TinyWorld:
    host = HostModel.objects.create(
        name=f"tiny-{factories._counter.__next__()}", source=str(files["model"]), kind="encoder", d_model=32, n_layers=2
    )
    home = institution or factories.institution("home")
    corpus = Corpus.objects.create(name=f"private-notes-{host.pk}", institution=home, n_snippets=len(TINY_TEXTS))
    Snippet.objects.bulk_create(
        Snippet(corpus=corpus, external_id=f"n{i}", text=text, position=i) for i, text in enumerate(TINY_TEXTS)
    )
    made = {}
    for layer in (0, 1):
        hook = HookPoint.objects.create(
            host_model=host, name=f"blocks.{layer}.hook_resid_post", layer=layer, site="resid_post"
        )
        activation_set = ActivationSet.objects.create(
            host_model=host, hook_point=hook, corpus=corpus, artifact_uri="/nonexistent"
        )
        made[layer] = SAE.objects.create(
            name=f"tiny-sae-{host.pk}-{layer}",
            hook_point=hook,
            activation_set=activation_set,
            architecture="topk",
            d_in=32,
            d_sae=64,
            k=4,
            artifact_uri=str(files[f"sae{layer}"]),
        )
        Latent.objects.bulk_create(Latent(sae=made[layer], index=i, max_activation=2.0) for i in range(64))
    return TinyWorld(host_model=host, sae=made[1], shallow_sae=made[0], home=home, corpus=corpus)


@pytest.fixture
def tiny_world(db, tiny_files) -> TinyWorld:
    from inference.runtime import cache_clear

    cache_clear()
    return register_tiny(tiny_files)


@pytest.fixture
def people(tiny_world):
    other = factories.institution("elsewhere")
    return {
        "physician": factories.user(role=Role.PHYSICIAN, institution_obj=tiny_world.home),
        "senior": factories.user(role=Role.SENIOR, institution_obj=tiny_world.home),
        "researcher": factories.user(role=Role.RESEARCHER, institution_obj=tiny_world.home),
        "coordinator": factories.user(role=Role.COORDINATOR, institution_obj=tiny_world.home),
        "foreign_physician": factories.user(role=Role.PHYSICIAN, institution_obj=other),
        "foreign_researcher": factories.user(role=Role.RESEARCHER, institution_obj=other),
    }


@pytest.fixture(scope="session")
def minilm_files(tmp_path_factory):
    from tests.clinical.minilm_world import build_world

    return build_world(tmp_path_factory.mktemp("minilm-world"))
