"""Corpus and SAE imports refuse oversize, NUL, badly encoded and deeply nested input with a clear error
naming the line, keep nothing, and leave no upload behind; import_sae copies only the SAELens files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import Role
from features.models import SAE, Corpus, Snippet
from inference.models import Job
from inference.services import job_run
from tests import factories

GOOD = {"external_id": "n1", "text": "Pt with CHF exacerbation."}


def _jsonl(path, *lines: str):
    path.write_bytes(b"".join((line.encode("utf-8") if isinstance(line, str) else line) + b"\n" for line in lines))
    return path


def _import(path, name="notes"):
    call_command("import_corpus", str(path), "--name", name)


@pytest.mark.django_db
def test_snippet_longer_than_the_limit_fails_naming_the_line(tmp_path, settings):
    settings.MAX_SNIPPET_CHARS = 20_000
    path = _jsonl(tmp_path / "notes.jsonl", json.dumps(GOOD), json.dumps({"external_id": "huge", "text": "x" * 50_000}))
    with pytest.raises(CommandError, match=r"line 2: 'text' is 50000 characters; the limit is 20000"):
        _import(path)
    assert not Corpus.objects.exists() and not Snippet.objects.exists()


@pytest.mark.django_db
def test_snippet_longer_than_the_limit_in_csv_fails_naming_the_line(tmp_path, settings):
    settings.MAX_SNIPPET_CHARS = 1000
    path = tmp_path / "notes.csv"
    path.write_text(f'external_id,text\na,fine\nb,"{"y" * 200_000}"\n')  # beyond csv's default field limit too
    with pytest.raises(CommandError, match=r"line 3: 'text' is 200000 characters; the limit is 1000"):
        _import(path)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "record",
    [
        {"external_id": "n2", "text": "Cr 2.3\u0000 AKI"},
        {"external_id": "n\u00002", "text": "Cr 2.3"},
        {"external_id": "n2", "text": "Cr 2.3", "metadata": {"section": "H\u0000PI"}},
        {"external_id": "n2", "text": "Cr 2.3", "concept_tags": ["A\u0000KI"]},
    ],
)
def test_nul_in_a_snippet_fails_naming_the_line_not_a_database_error(tmp_path, record):
    path = _jsonl(tmp_path / "notes.jsonl", json.dumps(GOOD), json.dumps(record))
    with pytest.raises(CommandError, match=r"line 2: '\w+' holds a NUL character") as caught:
        _import(path)
    assert "DataError" not in str(caught.value)
    assert not Corpus.objects.exists()


@pytest.mark.django_db
def test_bad_encoding_fails_naming_the_line(tmp_path):
    path = _jsonl(
        tmp_path / "notes.jsonl",
        json.dumps(GOOD),
        json.dumps(GOOD).replace("n1", "n2"),
        b'{"external_id": "n3", "text": "caf\xe9 au lait"}',
    )
    with pytest.raises(CommandError, match=r"line 3: not UTF-8 \(byte 0xe9") as caught:
        _import(path)
    assert "UnicodeDecodeError" not in str(caught.value)


@pytest.mark.django_db
def test_deeply_nested_metadata_fails_naming_the_line(tmp_path):
    nested = '{"external_id": "n2", "text": "t", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = _jsonl(tmp_path / "notes.jsonl", json.dumps(GOOD), nested)
    with pytest.raises(CommandError, match=r"line 2: nested too deeply"):
        _import(path)


@pytest.mark.django_db
def test_a_failed_upload_is_removed_and_the_job_names_the_line(tmp_path, _artifact_root):
    client = APIClient()
    client.force_authenticate(factories.user(role=Role.RESEARCHER))
    path = _jsonl(tmp_path / "bad.jsonl", json.dumps(GOOD), json.dumps({"external_id": "n2", "text": "a\u0000b"}))
    with path.open("rb") as handle:
        response = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": "bad"}, format="multipart")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    upload = Path(job.parameters["path"])
    assert upload.is_file()
    job = job_run(job_id=job.pk)
    assert job.status == "failed"
    assert "line 2: 'text' holds a NUL character" in job.message
    assert not upload.exists() and not upload.parent.exists()


@pytest.mark.django_db
def test_a_succeeded_upload_is_removed_too(tmp_path, _artifact_root):
    client = APIClient()
    client.force_authenticate(factories.user(role=Role.RESEARCHER))
    path = _jsonl(tmp_path / "good.jsonl", json.dumps(GOOD))
    with path.open("rb") as handle:
        response = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": "good"}, format="multipart")
    job = job_run(job_id=response.json()["id"])
    assert job.status == "succeeded"
    assert not list((_artifact_root / "uploads").rglob("good.jsonl"))


@pytest.mark.django_db
def test_a_command_import_leaves_the_users_own_file_alone(tmp_path):
    path = _jsonl(tmp_path / "mine.jsonl", json.dumps(GOOD))
    _import(path, name="mine")
    assert path.is_file()


def _saved_sae(directory):
    import torch

    from inference.engine.formats import save_sae
    from inference.engine.saes import Normalisation, TopKConfig, build_sae

    sae = build_sae(TopKConfig(d_in=8, d_sae=16, k=3), seed=0).eval()
    save_sae(
        sae=sae,
        normalisation=Normalisation(mean=torch.zeros(8), scale=1.0),
        directory=directory,
        metadata={"hook_name": "blocks.0.hook_resid_post"},
    )
    return directory


@pytest.mark.django_db
def test_import_sae_with_deeply_nested_cfg_gives_a_clean_error(tmp_path):
    directory = _saved_sae(tmp_path / "sae")
    (directory / "cfg.json").write_text('{"d_in": 8, "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CommandError, match="cfg.json is nested too deeply"):
        call_command("import_sae", str(directory), "--model", factories.host_model(d_model=8).name)
    assert not SAE.objects.exists()


@pytest.mark.django_db
def test_import_sae_copies_only_the_saelens_files(tmp_path):
    directory = _saved_sae(tmp_path / "sae")
    (directory / "optimizer.pt").write_bytes(b"\x80\x04pickled")
    (directory / "run.sh").write_text("rm -rf /\n")
    call_command("import_sae", str(directory), "--model", factories.host_model(d_model=8).name, "--name", "x")
    sae = SAE.objects.get(name="x")

    assert sorted(p.name for p in Path(sae.artifact_uri).iterdir()) == ["cfg.json", "sae_weights.safetensors"]


# Metadata, concept tags and external ids had no limit: 5 MB metadata was stored and then served by
# /api/v1/snippets/, 3 MB of tags accepted, and a 300-character external_id failed the job with a raw
# DataError and no line number.
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"external_id": "m1", "text": "fine", "metadata": {"blob": "z" * 5_000_000}},
            r"line 2: 'metadata' is 50000\d\d characters as JSON; the limit is 10000 \(MAX_METADATA_CHARS\)",
        ),
        ({"external_id": "m1", "text": "fine", "metadata": {"ward": "cardiology"}, "concept_tags": ["HF"]}, None),
        (
            {"external_id": "t1", "text": "fine", "concept_tags": ["x" * 1000] * 3000},
            r"line 2: 'concept_tags' has 3000 tags; the limit is 50 \(MAX_CONCEPT_TAGS\)",
        ),
        (
            {"external_id": "t1", "text": "fine", "concept_tags": ["HF", "x" * 1000]},
            r"line 2: a concept tag is 1000 characters; the limit is 200 \(MAX_CONCEPT_TAG_CHARS\)",
        ),
        (
            {"external_id": "e" * 300, "text": "fine"},
            r"line 2: 'external_id' is 300 characters; the limit is 200",
        ),
    ],
)
def test_oversized_metadata_tags_and_ids_fail_naming_the_line(tmp_path, record, message):
    path = _jsonl(tmp_path / "notes.jsonl", json.dumps(GOOD), json.dumps(record))
    if message is None:
        _import(path)  # within the limits: imported
        assert Snippet.objects.count() == 2
        return
    with pytest.raises(CommandError, match=message):
        _import(path)
    assert not Corpus.objects.exists() and not Snippet.objects.exists()


@pytest.mark.django_db
def test_metadata_nested_beyond_the_depth_fails_naming_the_line(tmp_path, settings):
    settings.MAX_JSON_DEPTH = 20
    metadata = '{"a": ' + "[" * 30 + "]" * 30 + "}"
    path = _jsonl(
        tmp_path / "notes.jsonl",
        json.dumps(GOOD),
        '{"external_id": "d1", "text": "fine", "metadata": ' + metadata + "}",
    )
    with pytest.raises(CommandError, match=r"line 2: 'metadata' is nested 31 levels deep; the limit is 20"):
        _import(path)
    assert not Snippet.objects.exists()
