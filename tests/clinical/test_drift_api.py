"""Drift audits through the API and a real Celery worker (tiny host model), and who may launch and read them."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from features.models import Corpus, Snippet
from tests.conftest import wait_for_job

OTHER_TEXTS = [
    "mri brain without contrast : no acute infarct",
    "afebrile , no acute distress",
    "ct of the chest shows a small nodule in the right upper lobe",
]


def _other_corpus(institution) -> Corpus:
    corpus = Corpus.objects.create(name="other-notes", institution=institution, n_snippets=len(OTHER_TEXTS))
    Snippet.objects.bulk_create(
        Snippet(corpus=corpus, external_id=f"o{i}", text=text, position=i) for i, text in enumerate(OTHER_TEXTS)
    )
    return corpus


@pytest.mark.django_db
def test_who_may_launch_a_drift_audit(tiny_world, people):
    corpus = _other_corpus(tiny_world.home)
    api = APIClient()
    body = {"sae": tiny_world.sae.pk, "corpus": corpus.pk}
    for role, expected in (("physician", 403), ("coordinator", 403), ("foreign_researcher", 404)):
        api.force_authenticate(people[role])
        assert api.post("/api/v1/drift-audits/", body, format="json").status_code == expected, role
    api.force_authenticate(people["researcher"])
    same = api.post("/api/v1/drift-audits/", {"sae": tiny_world.sae.pk, "corpus": tiny_world.corpus.pk}, format="json")
    assert same.status_code == 400 and "reference corpus" in same.json()["detail"]
    bad = api.post("/api/v1/drift-audits/", {**body, "thresholds": {"nonsense": 1}}, format="json")
    assert bad.status_code == 400


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_drift_audit_runs_on_a_worker_and_its_report_is_served(celery_worker, tiny_files, people, client):
    from clinical.services import drift_audit_start  # noqa: F401 - the API is what this test drives

    corpus = _other_corpus(people["researcher"].profile.institution)
    world_sae = (
        people["researcher"]
        .profile.institution.corpora.get(name__startswith="private-notes")
        .activation_sets.get(hook_point__layer=1)
        .saes.get()
    )
    api = APIClient()
    api.force_authenticate(people["researcher"])
    response = api.post(
        "/api/v1/drift-audits/",
        {"sae": world_sae.pk, "corpus": corpus.pk, "thresholds": {"divergence_threshold": 0.2}},
        format="json",
    )
    assert response.status_code == 202
    job = wait_for_job(response.json()["job"], timeout=300)
    assert job.status == "succeeded", job.message
    report = api.get(f"/api/v1/drift-audits/{job.pk}/").json()
    assert set(report) >= {"drift", "fve_reference", "fve_corpus", "divergence", "flagged"}
    assert job.result["report"]["config"]["divergence_threshold"] == 0.2
    assert job.result["report"]["n_tokens_corpus"] == sum(len(text.split()) for text in OTHER_TEXTS)
    api.force_authenticate(people["foreign_researcher"])
    assert api.get(f"/api/v1/drift-audits/{job.pk}/").status_code == 404
    client.force_login(people["researcher"])
    assert "Drift audit" in client.get(f"/drift/{job.pk}/").content.decode()
    assert str(job.pk) in client.get("/drift/").content.decode()
