"""import_corpus: the command, the service and a real Celery worker on Redis."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Role
from features.models import Corpus, Snippet
from inference.models import Job
from tests import factories
from tests.conftest import wait_for_job

GOOD = [
    {
        "external_id": "n1",
        "text": "Pt with CHF exacerbation, BNP 1200.",
        "concept_tags": ["HF"],
        "metadata": {"section": "HPI"},
    },
    {"external_id": "n2", "text": "Cr 2.3 up from 1.1, consistent with AKI.", "concept_tags": ["AKI"]},
    {"external_id": "n3", "text": "Seen 03/04/2025, MRN 12345678, call 555-123-4567. Jane Roe reviewed."},
]


def _write_jsonl(path, rows, *, bad_line: int | None = None):
    lines = [json.dumps(row) for row in rows]
    if bad_line is not None:
        lines.insert(bad_line - 1, '{"external_id": "broken", "text": ')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.django_db
def test_command_imports_jsonl_and_records_job_and_audit(tmp_path):
    call_command("import_corpus", str(_write_jsonl(tmp_path / "notes.jsonl", GOOD)), "--name", "notes")
    corpus = Corpus.objects.get(name="notes")
    assert corpus.n_snippets == 3
    assert list(corpus.snippets.values_list("external_id", flat=True)) == ["n1", "n2", "n3"]
    assert corpus.snippets.get(external_id="n1").concept_tags == ["HF"]
    job = Job.objects.get()
    assert (job.status, job.progress, job.result["n_snippets"]) == ("succeeded", 1.0, 3)
    assert AuditEvent.objects.filter(action="corpus.import", object_id=str(corpus.pk)).exists()


@pytest.mark.django_db
def test_command_imports_csv_with_phi_scrubbing(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("Jane Roe\n")
    path = tmp_path / "notes.csv"
    path.write_text(
        'external_id,text,concept_tags\nc1,"Seen 03/04/2025, MRN 12345678, call 555-123-4567. '
        'Jane Roe reviewed.",HF;AKI\n'
    )
    call_command("import_corpus", str(path), "--name", "csv", "--scrub-phi", "--phi-names", str(names))
    snippet = Snippet.objects.get()
    assert snippet.text == "Seen [DATE], [RECORD], call [PHONE]. [NAME] reviewed."
    assert snippet.concept_tags == ["HF", "AKI"]
    assert snippet.corpus.deidentified


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"external_id": "a", "text": "ok"}\n{"external_id": "b", "text": ', "line 2: not valid JSON"),
        (
            '{"external_id": "a", "text": "ok"}\n{"external_id": "a", "text": "again"}\n',
            "line 2: external_id 'a' repeats line 1",
        ),
        ('{"external_id": "a", "text": ""}\n', "line 1: 'text' is missing or empty"),
        ('{"text": "no id"}\n', "line 1: 'external_id' is missing"),
        ('{"external_id": "a", "text": "x", "concept_tags": "[1, 2"}\n', "line 1: 'concept_tags' is not valid JSON"),
        ("\n", "holds no snippets"),
    ],
)
def test_malformed_file_fails_naming_the_line_and_keeps_nothing(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_corpus", str(path), "--name", "bad")
    assert not Corpus.objects.exists() and not Snippet.objects.exists()
    assert Job.objects.get().status == "failed"


@pytest.mark.django_db
def test_command_refuses_missing_file_and_duplicate_name(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_corpus", str(tmp_path / "nope.jsonl"), "--name", "x")
    call_command("import_corpus", str(_write_jsonl(tmp_path / "a.jsonl", GOOD)), "--name", "dup")
    with pytest.raises(CommandError, match="already exists"):
        call_command("import_corpus", str(_write_jsonl(tmp_path / "b.jsonl", GOOD)), "--name", "dup")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_on_redis_imports_corpus_from_the_api(celery_worker, tmp_path):
    researcher = factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    rows = [{"external_id": f"n{i}", "text": f"Note {i}: CHF with BNP {100 + i}."} for i in range(2500)]
    with _write_jsonl(tmp_path / "big.jsonl", rows).open("rb") as handle:
        response = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": "big"}, format="multipart")
    assert response.status_code == 202, response.content
    job = wait_for_job(response.json()["id"])
    assert (job.status, job.progress) == ("succeeded", 1.0), job.message
    assert Corpus.objects.get(name="big").snippets.count() == 2500
    assert client.get(f"/api/v1/jobs/{job.pk}/").json()["progress"] == 1.0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_on_redis_fails_malformed_corpus_naming_the_line(celery_worker, tmp_path):
    researcher = factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    rows = [{"external_id": f"n{i}", "text": f"Note {i}."} for i in range(1500)]
    with _write_jsonl(tmp_path / "bad.jsonl", rows, bad_line=1200).open("rb") as handle:
        response = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": "bad"}, format="multipart")
    job = wait_for_job(response.json()["id"])
    assert job.status == "failed"
    assert "line 1200" in job.message
    assert not Corpus.objects.filter(name="bad").exists()
    assert Snippet.objects.count() == 0
