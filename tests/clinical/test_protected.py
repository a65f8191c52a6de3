"""Protected attributes end to end: a planted association in a real activation store and SAE is flagged by the
scan, a corpus without one flags nothing; the badge, the report page, the API and the export column."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import Role
from annotation.exports import ExportScope, export_write
from annotation.models import Assignment, Label, Round
from annotation.services import ConceptSpec, rubric_create
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

pytestmark = pytest.mark.django_db
N_SNIPPETS, N_TOKENS, D_IN, D_SAE = 300, 5, 8, 16
TAG = "SEX_GENDER:female"


def _planted_sae(tmp_path, *, planted: bool, tagged: bool, institution=None) -> SAE:
    """Snippet i carries TAG when i % 5 == 0; with `planted`, those snippets have one token with a large
    first dimension, which latent 0 (and only latent 0) reads."""
    from inference.engine.activations import write_activation_arrays
    from inference.engine.formats import save_sae
    from inference.engine.saes import Normalisation, build_sae, config_from_dict

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, size=(N_SNIPPETS * N_TOKENS, D_IN)).astype(np.float32)
    has_tag = np.arange(N_SNIPPETS) % 5 == 0
    if planted:
        x[np.flatnonzero(has_tag) * N_TOKENS + 2, 0] += 5.0
    store_dir = tmp_path / f"acts-{planted}-{tagged}"
    write_activation_arrays(
        store_dir,
        activations={"blocks.0.hook_resid_post": x},
        snippet_index=np.repeat(np.arange(N_SNIPPETS), N_TOKENS),
        n_snippets=N_SNIPPETS,
    )
    sae = build_sae(config_from_dict({"architecture": "relu", "d_in": D_IN, "d_sae": D_SAE}), seed=0)
    with torch.no_grad():
        sae.b_dec.zero_()
        sae.W_enc[0, :] = 0.0  # no latent but 0 reads the planted dimension
        sae.W_enc[:, 0] = torch.nn.functional.one_hot(torch.tensor(0), D_IN).float()
        sae.b_enc[0] = -3.0
    sae_dir = save_sae(
        sae=sae.eval(), normalisation=Normalisation.identity(D_IN), directory=tmp_path / f"sae-{planted}-{tagged}"
    )
    host = HostModel.objects.create(
        name=f"host-{planted}-{tagged}", source="local/none", kind="encoder", d_model=D_IN, n_layers=1
    )
    hook = HookPoint.objects.create(host_model=host, name="blocks.0.hook_resid_post", layer=0, site="resid_post")
    corpus = Corpus.objects.create(name=f"notes-{planted}-{tagged}", institution=institution)
    Snippet.objects.bulk_create(
        Snippet(
            corpus=corpus,
            external_id=str(i),
            text=f"note {i}",
            position=i,
            metadata={"protected": [TAG] if tagged and has_tag[i] else []},
        )
        for i in range(N_SNIPPETS)
    )
    activation_set = ActivationSet.objects.create(
        host_model=host, hook_point=hook, corpus=corpus, artifact_uri=str(store_dir)
    )
    row = SAE.objects.create(
        name=f"planted-{planted}-{tagged}",
        hook_point=hook,
        activation_set=activation_set,
        architecture="relu",
        d_in=D_IN,
        d_sae=D_SAE,
        artifact_uri=str(sae_dir),
    )
    Latent.objects.bulk_create(Latent(sae=row, index=i) for i in range(D_SAE))
    return row


def _scan(sae) -> dict:
    from inference.runtime import cache_clear

    cache_clear()
    out = io.StringIO()
    call_command("protected_scan", "--sae", str(sae.pk), stdout=out)
    return json.loads(out.getvalue())


def test_a_planted_association_is_flagged_and_nothing_else(tmp_path):
    sae = _planted_sae(tmp_path, planted=True, tagged=True)
    result = _scan(sae)
    assert result["n_flagged"] == 1 and result["tags"] == [TAG] and result["tag_counts"] == {TAG: 60}
    latent = Latent.objects.get(sae=sae, index=0)
    assert [a["tag"] for a in latent.protected_associations] == [TAG]
    assert latent.protected_associations[0]["attribute"] == "SEX_GENDER" and latent.protected_associations[0]["r"] > 0.5
    assert not Latent.objects.filter(sae=sae).exclude(index=0).exclude(protected_associations=[]).exists()


def test_no_flags_without_an_association_or_without_tags(tmp_path):
    assert _scan(_planted_sae(tmp_path, planted=False, tagged=True))["n_flagged"] == 0
    untagged = _scan(_planted_sae(tmp_path, planted=True, tagged=False))
    assert untagged["n_flagged"] == 0 and untagged["tags"] == []


def test_badges_report_page_api_and_export_column(tmp_path, client):
    home = factories.institution("home")
    sae = _planted_sae(tmp_path, planted=True, tagged=True, institution=home)
    _scan(sae)
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=home)
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=home)
    rater = factories.user(role=Role.PHYSICIAN, institution_obj=home)
    foreign = factories.user(role=Role.RESEARCHER)
    latent = Latent.objects.get(sae=sae, index=0)

    client.force_login(researcher)
    report = client.get(f"/protected/{sae.pk}/").content.decode()
    assert f">{latent.index}</a>" in report and TAG in report
    assert TAG in client.get(f"/labelled-latents/{latent.pk}/").content.decode()
    client.force_login(rater)
    assert client.get(f"/protected/{sae.pk}/").status_code == 403
    client.force_login(foreign)
    assert client.get(f"/protected/{sae.pk}/").status_code == 404
    api = APIClient()
    api.force_authenticate(researcher)
    body = api.get(f"/api/v1/saes/{sae.pk}/protected/").json()
    assert [row["index"] for row in body["latents"]] == [0] and body["latents"][0]["associations"][0]["tag"] == TAG
    api.force_authenticate(foreign)
    assert api.get(f"/api/v1/saes/{sae.pk}/protected/").status_code == 404

    # the labelling page shows the badge in a blind round only once the rater has labelled the latent
    version = rubric_create(
        name="protected rubric",
        by=coordinator,
        concepts=[
            ConceptSpec(code="HF", name="Heart failure"),
            ConceptSpec(code="SEX_GENDER", name="Sex/gender", protected=True),
        ],
    )
    assert version.concepts.get(code="SEX_GENDER").protected and not version.concepts.get(code="HF").protected
    round_ = Round.objects.create(
        name="blind",
        kind="production",
        sae=sae,
        rubric_version=version,
        coordinator=coordinator,
        status="open",
        blind=True,
    )
    assignment = Assignment.objects.create(round=round_, latent=latent, rater=rater, position=0)
    client.force_login(rater)
    assert 'id="protected-badge"' not in client.get(f"/rounds/{round_.pk}/items/0/").content.decode()
    Label.objects.create(
        assignment=assignment,
        concept=version.concepts.get(code="HF"),
        confidence=3,
        rationale="Fires on the first dimension only, like the planted one.",
    )
    assert 'id="protected-badge"' in client.get(f"/rounds/{round_.pk}/items/0/").content.decode()

    round_.status = "closed"
    round_.save()
    out = tmp_path / "latents.csv"
    export_write(kind="latents", fmt="csv", user=researcher, scope=ExportScope(sae_id=sae.pk), path=out)
    rows = list(csv.DictReader(out.open()))
    assert json.loads(rows[0]["protected_attributes"])[0]["tag"] == TAG
