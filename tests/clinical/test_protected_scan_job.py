"""The protected report's "Scan again" queues a `protected_scan` job instead of encoding the whole training
corpus inside the web request; the page follows the job; a broker that is down answers 503 and writes
nothing; a real Celery worker runs the scan and the page shows its result."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from features.models import Latent
from inference.models import Job
from tests import factories
from tests.clinical.test_protected import TAG, _planted_sae
from tests.conftest import wait_for_job
from tests.inference.processes import broker

DEAD_BROKER = "redis://127.0.0.1:18263/0"  # nothing listens here: a broker that is down


def _flagged(sae) -> list[int]:
    return list(Latent.objects.filter(sae=sae).exclude(protected_associations=[]).values_list("index", flat=True))


@pytest.mark.django_db
def test_scan_again_queues_a_job_and_the_page_follows_it(tmp_path, client):
    home = factories.institution("home")
    sae = _planted_sae(tmp_path, planted=True, tagged=True, institution=home)
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=home)
    client.force_login(researcher)
    response = client.post(f"/protected/{sae.pk}/")
    assert response.status_code == 302
    job = Job.objects.get(kind="protected_scan")
    assert job.parameters == {"sae_id": sae.pk} and job.status == "queued" and job.queue == "gpu"
    assert _flagged(sae) == [] and "protected" not in type(sae).objects.get(pk=sae.pk).metrics  # nothing ran here
    page = client.get(f"/protected/{sae.pk}/").content.decode()
    assert f"job {job.pk}</a>" in page and "queued" in page and 'http-equiv="refresh"' in page
    assert "disabled>Scan again" in page  # one scan at a time from the page

    api = APIClient()
    api.force_authenticate(researcher)
    twice = api.post(f"/api/v1/saes/{sae.pk}/protected/scan/", {}, format="json")
    assert twice.status_code == 409 and f"job {job.pk}" in twice.json()["detail"]  # one scan at a time
    assert (
        client.post(f"/protected/{sae.pk}/").status_code == 302
        and Job.objects.filter(kind="protected_scan").count() == 1
    )
    Job.objects.filter(pk=job.pk).update(status="cancelled")
    queued = api.post(f"/api/v1/saes/{sae.pk}/protected/scan/", {"threshold": 0.5}, format="json")
    assert queued.status_code == 202
    assert Job.objects.get(pk=queued.json()["job"]).parameters == {"sae_id": sae.pk, "threshold": 0.5}
    refused = api.post(f"/api/v1/saes/{sae.pk}/protected/scan/", {"threshold": 0}, format="json")
    assert refused.status_code == 400 and "threshold" in refused.json()["detail"]
    api.force_authenticate(factories.user(role=Role.COORDINATOR, institution_obj=home))
    assert api.post(f"/api/v1/saes/{sae.pk}/protected/scan/", {}, format="json").status_code == 403
    api.force_authenticate(factories.user(role=Role.RESEARCHER))
    assert api.post(f"/api/v1/saes/{sae.pk}/protected/scan/", {}, format="json").status_code == 404


@pytest.mark.django_db
def test_with_the_broker_down_scan_again_answers_503_and_writes_nothing(tmp_path, client):
    home = factories.institution("home")
    sae = _planted_sae(tmp_path, planted=True, tagged=True, institution=home)
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=home)
    client.force_login(researcher)
    api = APIClient()
    api.force_authenticate(researcher)
    with broker(DEAD_BROKER):
        page = client.post(f"/protected/{sae.pk}/")
        answer = api.post(f"/api/v1/saes/{sae.pk}/protected/scan/", {}, format="json")
    assert page.status_code == 503 and "The job queue is not answering; nothing was queued" in page.content.decode()
    assert answer.status_code == 503 and "not answering" in answer.json()["detail"]
    assert not Job.objects.exists() and _flagged(sae) == []


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_scan_and_the_page_shows_the_result(celery_worker, tmp_path, client):
    home = factories.institution("home")
    sae = _planted_sae(tmp_path, planted=True, tagged=True, institution=home)
    client.force_login(factories.user(role=Role.RESEARCHER, institution_obj=home))
    assert client.post(f"/protected/{sae.pk}/").status_code == 302
    job = wait_for_job(Job.objects.get(kind="protected_scan").pk, timeout=120)
    assert job.status == "succeeded", job.message
    assert job.result["n_flagged"] == 1 and job.result["tags"] == [TAG]
    assert _flagged(sae) == [0]
    page = client.get(f"/protected/{sae.pk}/").content.decode()
    assert "succeeded</strong>:" in page and "1 latents flagged" in page and f"{TAG} r=" in page
    assert 'http-equiv="refresh"' not in page
