"""Exports: exact long-format columns, pseudonyms only, every label, three formats, streamed, readable by
the agreement and consensus commands; the per-latent file beside it."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from accounts.models import Role
from annotation.exports import LABEL_COLUMNS, LATENT_COLUMNS
from annotation.models import Label
from tests import factories
from tests.annotation import worlds

pytestmark = pytest.mark.django_db
EXPECTED_COLUMNS = [
    "latent_id",
    "round_id",
    "round_kind",
    "rater",
    "institution",
    "role",
    "concept_code",
    "concept_name",
    "free_text",
    "confidence",
    "rationale",
    "is_repeat",
    "submitted_at",
    "rubric_version",
]


@pytest.fixture
def closed(postgres):
    coordinator = worlds.coordinator()
    people = worlds.raters(per_institution={"own": 2, "other": 2})
    sae = worlds.sae_with_examples(n_latents=5)
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=worlds.rubric(),
        raters_list=people,
        overlap=3,
        repeat_fraction=0.34,
        institutions=list({p.profile.institution for p in people}),
    )
    worlds.label_everything(
        round_,
        choose=lambda a: "HF" if a.latent.index % 2 else "AKI",
        rationale='Says "heart failure", with a comma, and a\nnewline',
    )
    worlds.close_round(round=round_, by=coordinator)
    return {"round": round_, "sae": sae, "people": people, "coordinator": coordinator}


def test_label_columns_are_exactly_the_documented_ones():
    assert list(LABEL_COLUMNS) == EXPECTED_COLUMNS
    assert {"posterior", "consensus", "entropy", "n_labels", "status", "adjudicated_concept"} <= set(LATENT_COLUMNS)


def test_command_exports_every_label_pseudonymised_as_csv(closed, tmp_path):
    out = tmp_path / "labels.csv"
    call_command("export_labels", "--round", str(closed["round"].pk), "--format", "csv", "--out", str(out))
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert list(rows[0]) == EXPECTED_COLUMNS
    assert len(rows) == Label.objects.filter(assignment__round=closed["round"]).count()
    usernames = {p.username for p in closed["people"]}
    pseudonyms = {p.profile.pseudonym for p in closed["people"]}
    text = out.read_text()
    assert not any(name in text for name in usernames)
    assert {row["rater"] for row in rows} == pseudonyms
    assert {row["institution"] for row in rows} == {"own", "other"}
    assert {row["is_repeat"] for row in rows} == {"true", "false"}
    assert all(row["role"] == Role.PHYSICIAN and row["round_kind"] == "calibration" for row in rows)
    assert rows[0]["rationale"].startswith('Says "heart failure", with a comma, and a\nnewline')
    latents = list(csv.DictReader((tmp_path / "labels.latents.csv").open(newline="", encoding="utf-8")))
    assert len(latents) == 5
    assert all(json.loads(row["posterior"]) and row["consensus"] in ("HF", "AKI") for row in latents)


def test_agreement_and_consensus_commands_read_the_export_as_it_is(closed, tmp_path, capsys):
    out = tmp_path / "labels.csv"
    call_command("export_labels", "--sae", str(closed["sae"].pk), "--format", "csv", "--out", str(out))
    capsys.readouterr()
    call_command("agreement", "--csv", str(out), "--level", "nominal", "--bootstrap", "50", "--json")
    agreement = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert agreement["n_units"] == 5 and agreement["alpha"] == pytest.approx(1.0)
    call_command("consensus", "--csv", str(out), "--method", "dawid-skene", "--json")
    consensus = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(consensus["units"]) == 5


def test_command_writes_jsonl_and_parquet(closed, tmp_path):
    import pyarrow.parquet as pq

    n = Label.objects.count()
    call_command(
        "export_labels", "--round", str(closed["round"].pk), "--format", "jsonl", "--out", str(tmp_path / "l.jsonl")
    )
    lines = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert len(lines) == n and list(lines[0]) == EXPECTED_COLUMNS
    assert isinstance(lines[0]["is_repeat"], bool)
    latent_lines = [json.loads(line) for line in (tmp_path / "l.latents.jsonl").read_text().splitlines()]
    assert isinstance(latent_lines[0]["posterior"], dict)
    call_command(
        "export_labels", "--round", str(closed["round"].pk), "--format", "parquet", "--out", str(tmp_path / "l.parquet")
    )
    table = pq.read_table(tmp_path / "l.parquet")
    assert table.num_rows == n and table.column_names == EXPECTED_COLUMNS
    assert pq.read_table(tmp_path / "l.latents.parquet").num_rows == 5


def test_institution_scope_keeps_only_that_institutions_raters(closed, tmp_path):
    out = tmp_path / "own.csv"
    call_command(
        "export_labels", "--sae", str(closed["sae"].pk), "--institution", "own", "--format", "csv", "--out", str(out)
    )
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    assert rows and {row["institution"] for row in rows} == {"own"}


@pytest.mark.parametrize(
    "arguments",
    [
        ["--round", "999999", "--format", "csv"],
        ["--sae", "999999", "--format", "csv"],
    ],
)
def test_command_refuses_bad_input(closed, tmp_path, arguments):
    with pytest.raises(CommandError):
        call_command("export_labels", *arguments, "--out", str(tmp_path / "x.csv"))


def test_open_rounds_are_not_exported(postgres, tmp_path):
    coordinator = worlds.coordinator()
    people = worlds.raters(per_institution={"a": 2})
    sae = worlds.sae_with_examples(n_latents=2)
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=worlds.rubric(),
        raters_list=people,
        overlap=2,
        institutions=[people[0].profile.institution],
    )
    worlds.label_everything(round_, choose=lambda a: "HF")
    call_command("export_labels", "--round", str(round_.pk), "--format", "csv", "--out", str(tmp_path / "o.csv"))
    assert (tmp_path / "o.csv").read_text().strip().splitlines() == [",".join(EXPECTED_COLUMNS)]


def test_api_streams_csv_and_jsonl_and_serves_parquet(closed):
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=factories.institution("own"))
    client = APIClient()
    client.force_authenticate(researcher)
    round_id = closed["round"].pk
    response = client.get(f"/api/v1/exports/labels/?round={round_id}&format=csv")
    assert response.status_code == 200 and isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == Label.objects.count() and list(rows[0]) == EXPECTED_COLUMNS
    response = client.get(f"/api/v1/exports/latents/?round={round_id}&format=jsonl")
    assert len(b"".join(response.streaming_content).decode().splitlines()) == 5
    response = client.get(f"/api/v1/exports/labels/?round={round_id}&format=parquet")
    assert response.status_code == 200 and b"".join(response.streaming_content)[:4] == b"PAR1"
    assert client.get(f"/api/v1/exports/labels/?round={round_id}&format=xlsx").status_code == 400
    assert client.get("/api/v1/exports/labels/?format=csv").status_code == 400
