"""Explaining notes with the real demo SAE that `seed_demo --quick` builds (MiniLM layer 3, a TopK SAE
trained on the shipped corpus, the simulated calibration round's consensus): labels, uncertainty and
rater counts read back as the round left them, evidence in whole words, a long note in windows."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import Profile
from annotation.models import Consensus, Round
from clinical.models import SavedNote
from features.models import SAE, LatentExample, Snippet

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _explain(sae, text) -> dict:
    out = io.StringIO()
    call_command("explain_note", "--sae", str(sae.pk), "--text", text, "--json", stdout=out)
    return json.loads(out.getvalue())


def _whole_words(text: str, span: str) -> bool:
    """`span` occurs in `text` starting and ending on word boundaries."""
    return any(
        (start == 0 or not (text[start - 1].isalnum() and span[0].isalnum()))
        and (start + len(span) == len(text) or not (text[start + len(span)].isalnum() and span[-1].isalnum()))
        for start in (m.start() for m in re.finditer(re.escape(span), text))
    )


def test_explaining_notes_with_the_demo_sae(settings, tmp_path):
    from inference.runtime import cache_clear

    settings.VAR_DIR = tmp_path
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
    cache_clear()
    call_command("seed_demo", "--quick", stdout=io.StringIO(), stderr=io.StringIO())
    sae = SAE.objects.get()
    demo = Round.objects.get(simulated=True)
    rows = Consensus.objects.of_sae(sae.pk).platform().filter(latent__in=demo.latents.all(), routing="consensus")
    row = max(rows, key=lambda r: (r.posterior[r.map_concept], -r.latent_id))
    example = LatentExample.objects.filter(latent=row.latent, kind="top").order_by("rank").first()
    note = example.snippet.text

    result = _explain(sae, note)
    assert all(note[t["start"] : t["end"]] == t["text"] for t in result["tokens"])
    assert result["n_windows"] == 1 and result["notice"] is None
    fired = [x for t in result["tokens"] for x in t["latents"] if x["latent_id"] == row.latent_id]
    assert fired, "the latent's own top example must make it fire"
    latent = fired[0]
    assert latent["label"] == row.map_concept and latent["posterior"] == pytest.approx(row.posterior[row.map_concept])
    assert latent["uncertainty"] in ("consensus", "validated") and latent["agreement"] == row.agreement
    assert (latent["n_raters"], latent["simulated"]) == (3, "all") and latent["n_labels"] >= 3
    concept = next(c for c in result["concepts"] if c["code"] == row.map_concept)
    assert row.latent.index in concept["latent_indices"]
    summary = concept["summary"]
    assert "simulated raters (demo)" in summary and "physicians" not in summary.split("—")[1]
    assert all(_whole_words(note, span) for c in result["concepts"] for span in c["tokens"])
    assert [c["score"] for c in result["concepts"]] == sorted((c["score"] for c in result["concepts"]), reverse=True)
    assert result["summary"] == [c["summary"] for c in result["concepts"]] and result["disclaimer"]

    # A note longer than MiniLM's 512 positions: overlapping windows, every span still on the text.
    long_note = ""
    for snippet in Snippet.objects.filter(corpus=example.snippet.corpus).order_by("position"):
        if len(long_note) > 6000:
            break
        long_note += snippet.text + "\n"
    physician = Profile.objects.get(user__username="dr_alba").user
    api = APIClient()
    api.force_authenticate(physician)
    body = api.post("/api/v1/explain/", {"sae": sae.pk, "text": long_note}, format="json").json()
    assert body["n_windows"] >= 2 and body["window_tokens"] == 510 and body["stride"] == 128
    assert f"split into {body['n_windows']} windows of 510 tokens" in body["notice"]
    assert all(long_note[t["start"] : t["end"]] == t["text"] for t in body["tokens"])
    assert [t["start"] for t in body["tokens"]] == sorted(t["start"] for t in body["tokens"])
    assert len(body["tokens"]) > 700 and body["layers"] == []  # one SAE on the host: no flow
    assert SavedNote.objects.count() == 0
