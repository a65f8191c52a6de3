"""Round statistics off the request path: closing or recomputing queues a `cpu` job; a real worker on Redis
computes it; the dashboard, the round API and the agreement export say "still computing" until it ends."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, Role
from annotation import services
from annotation.models import AgreementReport, Label, Round
from tests import factories
from tests.annotation import worlds
from tests.annotation.conftest import client_for
from tests.inference.processes import broker, wait_until

# Nothing listens here (the roundstats engineer's port range 17900-17999): a broker that is down.
DEAD_BROKER = "redis://127.0.0.1:17931/0"


def _labelled_round():
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    raters = [factories.user(role=Role.PHYSICIAN, institution_obj=own) for _ in range(3)]
    sae = worlds.sae_with_examples(n_latents=6, institution=own)
    version = worlds.rubric(by=coordinator)
    round_ = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=3
    )
    worlds.label_everything(round_, choose=lambda a: "HF" if a.latent.index % 2 else "AKI")
    return round_, coordinator


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _statistics_written(round_: Round) -> bool:
    return AgreementReport.objects.filter(round=round_, metric="krippendorff_alpha", level="nominal").exists()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_close_through_the_api_answers_at_once_and_a_worker_computes_the_statistics(celery_worker):
    round_, coordinator = _labelled_round()
    client = client_for(coordinator)
    started = time.perf_counter()
    response = client.post(f"/api/v1/rounds/{round_.pk}/close/")
    latency = time.perf_counter() - started
    answered_at = timezone.now()
    print(f"close request answered in {latency * 1000:.0f} ms")
    assert response.status_code == 200, response.content
    assert latency < 1.0, f"closing took {latency:.2f} s: the statistics must not be computed in the request"
    body = response.json()
    # The answer was built before any statistics existed: the job had not even been claimed.
    assert (body["status"], body["statistics_status"], body["statistics_progress"]) == ("closed", "queued", 0.0)

    round_ = wait_until(
        lambda: Round.objects.filter(pk=round_.pk, statistics_status__in=["done", "failed"]).first(),
        timeout=120,
        what="the statistics job to end",
    )
    assert (round_.statistics_status, round_.statistics_progress) == ("done", 1.0), round_.statistics_message
    print(f"close to statistics done: {time.perf_counter() - started:.1f} s")
    assert _statistics_written(round_)
    written = AuditEvent.objects.get(action="round.statistics", object_id=str(round_.pk))
    assert written.created_at >= answered_at  # the worker wrote them after the request had answered
    detail = client.get(f"/api/v1/rounds/{round_.pk}/").json()
    assert (detail["statistics_status"], detail["statistics_progress"]) == ("done", 1.0)
    n_labels = Label.objects.filter(assignment__round=round_).count()  # 6 latents × 3 raters + hidden repeats
    assert n_labels > 18 and f"{n_labels} labels" in detail["statistics_message"]
    agreement = client.get(f"/api/v1/rounds/{round_.pk}/agreement/")
    assert agreement["X-Statistics-Status"] == "done"
    assert {(row["metric"], row["level"]) for row in agreement.json()["results"]} >= {("krippendorff_alpha", "nominal")}

    # The broker down: the recompute request is refused (503) and changes nothing ...
    token, requests = round_.statistics_token, AuditEvent.objects.filter(action="round.statistics.request").count()
    with broker(DEAD_BROKER):
        response = client.post(f"/api/v1/rounds/{round_.pk}/statistics/")
    assert response.status_code == 503, response.content
    assert "job queue is not reachable" in response.json()["detail"]
    round_.refresh_from_db()
    assert (round_.statistics_status, round_.statistics_token) == ("done", token)
    assert AuditEvent.objects.filter(action="round.statistics.request").count() == requests
    # ... and "Recompute statistics" sends it again once the broker is back.
    AgreementReport.objects.filter(round=round_).delete()
    response = client.post(f"/api/v1/rounds/{round_.pk}/statistics/")
    assert response.status_code == 200 and response.json()["statistics_status"] == "queued"
    round_ = wait_until(
        lambda: Round.objects.filter(pk=round_.pk, statistics_status="done").first(),
        timeout=120,
        what="the recomputation to end",
    )
    assert _statistics_written(round_)


@pytest.mark.django_db
def test_dashboard_api_and_export_say_still_computing_until_the_job_ends(postgres):
    round_, coordinator = _labelled_round()
    client = client_for(coordinator)
    # In this test's transaction the job is never sent (on_commit does not fire): it stays queued.
    response = client.post(f"/api/v1/rounds/{round_.pk}/close/")
    assert response.json()["statistics_status"] == "queued"
    round_.refresh_from_db()
    assert round_.statistics_pending and not _statistics_written(round_)

    browser = _browser(coordinator)
    text = browser.get(f"/rounds/{round_.pk}/").content.decode()
    assert "Statistics: computing…" in text and '<span id="stats-percent">0%</span>' in text
    assert "queued: waiting for a worker" in text and 'id="stats-computing"' in text and 'id="alpha-value"' not in text
    assert "round_statistics.js" in text and "<script>" not in text
    state = browser.get(f"/rounds/{round_.pk}/statistics-status/").json()
    assert (state["status"], state["pending"], state["progress"]) == ("queued", True, 0.0)
    assert client.get(f"/api/v1/rounds/{round_.pk}/").json()["statistics_status"] == "queued"
    agreement = client.get(f"/api/v1/rounds/{round_.pk}/agreement/")
    assert (agreement["X-Statistics-Status"], agreement["X-Statistics-Message"]) == ("queued", "still computing")
    export = browser.get("/export/", {"round": round_.pk, "kind": "latents", "format": "csv"})
    assert export.status_code == 200 and "still computing" in export.content.decode()

    assert services.round_statistics_run(round_id=round_.pk, token=round_.statistics_token) == "done"
    text = browser.get(f"/rounds/{round_.pk}/").content.decode()
    assert "computing…" not in text and 'id="alpha-value"' in text
    assert browser.get(f"/rounds/{round_.pk}/statistics-status/").json()["pending"] is False
    assert "X-Statistics-Message" not in client.get(f"/api/v1/rounds/{round_.pk}/agreement/")
    export = browser.get("/export/", {"round": round_.pk, "kind": "latents", "format": "csv"})
    assert export.status_code == 200 and export["Content-Disposition"].startswith("attachment")


@pytest.mark.django_db
def test_a_redelivered_or_superseded_job_does_nothing(postgres):
    round_, coordinator = _labelled_round()
    services.round_close(round=round_, by=coordinator)
    round_.refresh_from_db()
    first = round_.statistics_token
    assert services.round_statistics_run(round_id=round_.pk, token=first) == "done"
    n_events = AuditEvent.objects.filter(action="round.statistics", object_id=str(round_.pk)).count()
    # acks_late: the same message delivered again after it finished is dropped, nothing is written twice.
    assert services.round_statistics_run(round_id=round_.pk, token=first) == "dropped"
    services.round_statistics_request(round=round_, by=coordinator)
    round_.refresh_from_db()
    assert services.round_statistics_run(round_id=round_.pk, token=first) == "dropped"  # superseded
    assert AuditEvent.objects.filter(action="round.statistics", object_id=str(round_.pk)).count() == n_events
    assert services.round_statistics_run(round_id=round_.pk, token=round_.statistics_token) == "done"


@pytest.mark.django_db
def test_a_failed_computation_says_why_and_a_recompute_works(postgres):
    round_, coordinator = _labelled_round()
    services.round_close(round=round_, by=coordinator)
    round_.refresh_from_db()
    # The data changed under the job (the round reopened behind the service's back): the computation refuses.
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.OPEN)
    assert services.round_statistics_run(round_id=round_.pk, token=round_.statistics_token) == "failed"
    round_.refresh_from_db()
    assert round_.statistics_status == "failed"
    assert "Statistics are computed for closed rounds" in round_.statistics_message
    assert not _statistics_written(round_)
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.CLOSED)

    browser = _browser(coordinator)
    text = browser.get(f"/rounds/{round_.pk}/").content.decode()
    assert "Statistics failed" in text and "Statistics are computed for closed rounds" in text
    response = browser.post(f"/rounds/{round_.pk}/statistics/")
    assert response.status_code == 302
    round_.refresh_from_db()
    assert round_.statistics_status == "queued"
    assert services.round_statistics_run(round_id=round_.pk, token=round_.statistics_token) == "done"
    assert _statistics_written(round_)


@pytest.mark.django_db
def test_progress_is_reported_at_most_twice_a_second(postgres):
    round_, coordinator = _labelled_round()
    services.round_close(round=round_, by=coordinator)
    round_.refresh_from_db()
    Round.objects.filter(pk=round_.pk).update(statistics_status="running", statistics_worker="w")
    from annotation.services.statistics_jobs import _Lease

    report = _Lease(round_id=round_.pk, token=round_.statistics_token, worker="w").report
    report(0.3, "first")
    report(0.6, "second, too soon")
    round_.refresh_from_db()
    assert (round_.statistics_progress, round_.statistics_message) == (0.3, "first")
