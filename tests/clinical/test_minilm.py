"""The demo's MiniLM and a TopK SAE trained on a split of the shipped corpus: drift audits of the shipped
discharge-prose slice (drift) and of a held-out in-distribution split (no drift), and explaining a note."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from accounts.models import Role
from annotation.models import Consensus
from clinical.models import SavedNote
from features.models import (
    SAE,
    ActivationSet,
    Corpus,
    HookPoint,
    HostModel,
    Latent,
    Snippet,
)
from inference.models import Job
from tests import factories

from .minilm_world import HOOK

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
REPORT_KEYS = {"drift", "fve_reference", "fve_corpus", "divergence", "flagged"}
FLAG_KEYS = {"latent_id", "index", "rate_reference", "rate_corpus", "log_ratio", "label", "uncertainty"}


@pytest.fixture
def minilm(minilm_files):
    from inference.runtime import cache_clear

    cache_clear()
    host = HostModel.objects.create(
        name="all-MiniLM-L6-v2", source=minilm_files.model_source, kind="encoder", d_model=384, n_layers=6
    )
    hook = HookPoint.objects.create(host_model=host, name=HOOK, layer=3, site="resid_post")
    corpora = {}
    for name, records in minilm_files.splits.items():
        corpus = Corpus.objects.create(name=f"demo-{name}", n_snippets=len(records))
        Snippet.objects.bulk_create(
            Snippet(
                corpus=corpus,
                external_id=r["external_id"],
                text=r["text"],
                metadata=r["metadata"],
                concept_tags=r["concept_tags"],
                position=i,
            )
            for i, r in enumerate(records)
        )
        corpora[name] = corpus
    activation_sets = {
        name: ActivationSet.objects.create(
            host_model=host, hook_point=hook, corpus=corpora[name], artifact_uri=str(minilm_files.activation_dirs[name])
        )
        for name in ("train", "held_out")
    }  # the discharge slice is captured by the audit itself
    sae = SAE.objects.create(
        name="demo topk-512",
        hook_point=hook,
        activation_set=activation_sets["train"],
        architecture="topk",
        d_in=384,
        d_sae=512,
        k=16,
        artifact_uri=str(minilm_files.sae_dir),
    )
    Latent.objects.bulk_create(Latent(sae=sae, index=i) for i in range(512))
    return {"sae": sae, "corpora": corpora, "files": minilm_files}


def _drift(sae, corpus) -> dict:
    out = io.StringIO()
    call_command("drift_audit", "--sae", str(sae.pk), "--corpus", corpus.name, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_discharge_slice_drifts_and_a_held_out_split_does_not(minilm):
    sae = minilm["sae"]
    held_out = _drift(sae, minilm["corpora"]["held_out"])
    assert set(held_out) == REPORT_KEYS
    assert held_out["drift"] is False and held_out["flagged"] == []
    ood = _drift(sae, minilm["corpora"]["ood"])
    assert ood["drift"] is True
    assert ood["divergence"] > 10 * held_out["divergence"]
    assert ood["fve_corpus"] < held_out["fve_corpus"] < ood["fve_reference"] + 0.05
    assert len(ood["flagged"]) >= 10 and all(set(flag) == FLAG_KEYS for flag in ood["flagged"])
    assert all(flag["uncertainty"] == "unlabelled" for flag in ood["flagged"])
    # the audit captured the discharge slice once and registered it for the next audit
    assert ActivationSet.objects.filter(corpus=minilm["corpora"]["ood"]).count() == 1
    job = Job.objects.filter(kind="drift_audit").order_by("-pk").first()
    assert job.status == "succeeded" and job.result["report"]["reasons"]


def test_flagged_latents_carry_their_labels_and_the_page_plots_them(minilm, client):
    sae = minilm["sae"]
    first = _drift(sae, minilm["corpora"]["ood"])
    flagged = first["flagged"][0]
    Consensus.objects.create(
        latent_id=flagged["latent_id"],
        sae=sae,
        method="bayesian-ds",
        posterior={"ARTIFACT": 0.9, "HF": 0.1},
        map_concept="ARTIFACT",
        entropy=0.3,
        n_labels=3,
        routing="consensus",
    )
    again = _drift(sae, minilm["corpora"]["ood"])
    assert again["flagged"][0]["label"] == "ARTIFACT" and again["flagged"][0]["uncertainty"] == "consensus"
    researcher = factories.user(role=Role.RESEARCHER)
    from clinical.services import drift_audit_start
    from inference.services import job_run

    job = drift_audit_start(sae=sae, corpus=minilm["corpora"]["ood"], by=researcher, enqueue=False)
    job = job_run(job_id=job.pk)
    client.force_login(researcher)
    html = client.get(f"/drift/{job.pk}/").content.decode()
    assert "Drift: demo-ood" in html and "<svg" in html and html.count('class="cell"') >= 20
    assert html.count('class="flagged"') == len(job.result["report"]["flagged"])
    flagged_table = html.split('id="flagged"')[1]
    assert "Artifact (formatting" in flagged_table and "consensus" in flagged_table
    physician = factories.user(role=Role.PHYSICIAN)
    client.force_login(physician)
    assert client.get(f"/drift/{job.pk}/").status_code == 403


def test_explaining_a_note_with_the_demo_sae(minilm):
    sae = minilm["sae"]
    note = "Pt is a 67M with CHF, BNP 1,840 pg/mL (H) and JVD. Started furosemide 40 mg IV BID."
    out = io.StringIO()
    call_command("explain_note", "--sae", str(sae.pk), "--text", note, "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert all(note[t["start"] : t["end"]] == t["text"] for t in result["tokens"])
    assert "".join(t["text"] for t in result["tokens"]) == note.replace(" ", "")  # every character but spaces
    assert all(len(t["latents"]) == 16 for t in result["tokens"])  # TopK, k = 16
    strongest = max((x for t in result["tokens"] for x in t["latents"]), key=lambda x: x["activation"])
    Consensus.objects.create(
        latent_id=strongest["latent_id"],
        sae=sae,
        method="bayesian-ds",
        posterior={"HF": 0.82, "MI": 0.18},
        map_concept="HF",
        entropy=0.4,
        n_labels=3,
        routing="consensus",
        detection_accuracy=0.75,
    )
    out = io.StringIO()
    call_command("explain_note", "--sae", str(sae.pk), "--text", note, "--json", stdout=out)
    concepts = json.loads(out.getvalue())["concepts"]
    assert [c["code"] for c in concepts] == ["HF"] and concepts[0]["uncertainty"] == "validated"
    assert SavedNote.objects.count() == 0
