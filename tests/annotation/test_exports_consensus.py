"""The per-latent export carries the platform consensus (soft label = its posterior, n_labels and n_raters),
and rounds labelled by simulated raters stay out of every export unless asked for."""

from __future__ import annotations

import json
import math

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation import services
from annotation.models import PLATFORM_CONSENSUS_METHOD, Assignment, Consensus, Round
from annotation.stats.routing import RoutingConfig
from tests.annotation import worlds

pytestmark = pytest.mark.django_db
THREE_WAY = ("AKI", "AF", "NEG")


def _closed(*, simulated: bool = False, sae=None, people=None, coordinator=None):
    coordinator = coordinator or worlds.coordinator()
    people = people or worlds.raters(per_institution={"a": 3, "b": 3})
    sae = sae or worlds.sae_with_examples(n_latents=6)
    round_ = services.round_create(
        name=f"export-{simulated}",
        kind="calibration",
        sae=sae,
        rubric_version=worlds.rubric(),
        institutions=list({p.profile.institution for p in people}),
        overlap=3,
        selection_rule="hand",
        latent_indices=list(range(6)),
        raters=people,
        seed=2,
        simulated=simulated,
        routing=RoutingConfig(min_rounds=1),
        by=coordinator,
    )
    services.round_open(round=round_, by=coordinator)
    raters_of: dict[int, list[int]] = {}
    for latent_id, rater_id in (
        Assignment.objects.filter(round=round_, is_repeat=False)
        .order_by("latent_id", "rater_id")
        .values_list("latent_id", "rater_id")
    ):
        raters_of.setdefault(latent_id, []).append(rater_id)
    # Latents 0–2: unanimous HF; 3–5: each of the three raters says something else.
    worlds.label_everything(
        round_, choose=lambda a: "HF" if a.latent.index < 3 else THREE_WAY[raters_of[a.latent_id].index(a.rater_id)]
    )
    worlds.close_round(round=round_, by=coordinator)
    return round_, sae, people, coordinator


def _latent_rows(tmp_path, *arguments) -> dict[int, dict]:
    out = tmp_path / "labels.jsonl"
    call_command("export_labels", *arguments, "--format", "jsonl", "--out", str(out))
    lines = (tmp_path / "labels.latents.jsonl").read_text().splitlines()
    return {row["latent_index"]: row for row in map(json.loads, lines)}


def test_latent_export_is_the_platform_consensus_with_judgment_and_rater_counts(postgres, tmp_path):
    round_, sae, _, _ = _closed()
    rows = _latent_rows(tmp_path, "--sae", str(sae.pk))
    assert len(rows) == 6
    for index, row in rows.items():
        stored = Consensus.objects.of_sae(sae.pk).platform().get(latent__index=index)
        assert row["method"] == PLATFORM_CONSENSUS_METHOD == "bayesian-ds"
        assert row["posterior"] == stored.posterior and row["entropy"] == pytest.approx(stored.entropy)
        assert row["n_raters"] == 3
        labels = Assignment.objects.filter(round=round_, latent__index=index).count()
        assert row["n_labels"] == labels  # judgments, hidden repeats included
    assert sum(row["n_labels"] for row in rows.values()) > sum(row["n_raters"] for row in rows.values())
    assert rows[0]["consensus"] == "HF" and rows[0]["posterior"]["HF"] > 0.9


def test_a_three_way_split_is_exported_uncertain(postgres, tmp_path):
    _, sae, _, _ = _closed()
    rows = _latent_rows(tmp_path, "--sae", str(sae.pk))
    for index in (3, 4, 5):
        posterior = rows[index]["posterior"]
        assert max(posterior.values()) < 0.8, posterior
        assert rows[index]["entropy"] > 0.5
        spread = -sum(p * math.log(p) for p in posterior.values() if p > 0)
        assert spread > 0.5


def test_simulated_rounds_stay_out_of_exports_unless_asked(postgres, tmp_path):
    simulated, sae, people, coordinator = _closed(simulated=True)
    assert Round.objects.get(pk=simulated.pk).simulated
    assert _latent_rows(tmp_path, "--sae", str(sae.pk)) == {}
    labels = (tmp_path / "labels.jsonl").read_text()
    assert labels == ""
    with pytest.raises(CommandError, match="simulated"):
        call_command("export_labels", "--round", str(simulated.pk), "--format", "csv", "--out", str(tmp_path / "x.csv"))
    asked = _latent_rows(tmp_path, "--sae", str(sae.pk), "--include-simulated")
    assert len(asked) == 6
    rows = _latent_rows(tmp_path, "--round", str(simulated.pk), "--include-simulated")
    assert len(rows) == 6 and all(row["scope"] == f"round:{simulated.pk}" for row in rows.values())


def test_api_and_page_leave_simulated_rounds_out_unless_asked(postgres):
    from django.test import Client
    from rest_framework.test import APIClient

    from accounts.models import Role
    from tests import factories

    simulated, sae, _, _ = _closed(simulated=True)
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=factories.institution("a"))
    client = APIClient()
    client.force_authenticate(researcher)

    def n_rows(url):
        response = client.get(url)
        assert response.status_code == 200
        return len(b"".join(response.streaming_content).decode().splitlines())

    assert n_rows(f"/api/v1/exports/latents/?sae={sae.pk}&format=jsonl") == 0
    assert n_rows(f"/api/v1/exports/latents/?sae={sae.pk}&format=jsonl&include_simulated=1") == 6
    page = Client()
    page.force_login(researcher)
    response = page.get(f"/export/?sae={sae.pk}&kind=latents&format=jsonl&include_simulated=on")
    assert len(b"".join(response.streaming_content).decode().splitlines()) == 6
    response = page.get(f"/export/?sae={sae.pk}&kind=latents&format=jsonl")
    assert b"".join(response.streaming_content) == b""
