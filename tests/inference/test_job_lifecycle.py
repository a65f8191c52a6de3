"""Job lifecycle: cancelling through the API, and a running job noticing it was cancelled."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Role
from inference.models import Job
from inference.services import job_create, job_run
from tests import factories

pytestmark = pytest.mark.django_db


def _researcher_client():
    researcher = factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    return researcher, client


def test_cancel_a_queued_job_then_refuse_a_second_cancel():
    researcher, client = _researcher_client()
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, by=researcher, enqueue=False)
    response = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert AuditEvent.objects.filter(action="job.cancel", object_id=str(job.pk)).exists()
    again = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "already finished" in again.json()["detail"]


def test_a_running_job_stops_at_its_next_progress_report_after_cancel():
    researcher, _ = _researcher_client()
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, by=researcher, enqueue=False)
    reached: list[float] = []

    def work(job_row, progress):
        progress(0.1, "working")
        reached.append(0.1)
        Job.objects.filter(pk=job_row.pk).update(status=Job.Status.CANCELLED)  # someone else cancels
        progress(1.0, "would finish")
        reached.append(1.0)
        return {"done": True}

    finished = job_run(job_id=job.pk, work=work)
    assert reached == [0.1]
    assert finished.status == "cancelled" and finished.result == {}


def test_a_finished_job_is_not_run_again_on_redelivery():
    researcher, _ = _researcher_client()
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, by=researcher, enqueue=False)
    calls: list[int] = []
    job_run(job_id=job.pk, work=lambda row, progress: calls.append(1) or {"n": 1})
    job_run(job_id=job.pk, work=lambda row, progress: calls.append(2) or {"n": 2})
    job.refresh_from_db()
    assert calls == [1] and job.result == {"n": 1} and job.attempts == 1


def test_physicians_cannot_cancel_jobs():
    researcher, _ = _researcher_client()
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, by=researcher, enqueue=False)
    client = APIClient()
    client.force_authenticate(factories.user(role=Role.PHYSICIAN))
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == "queued"
