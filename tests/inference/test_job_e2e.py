"""In Chromium: a researcher watches a running job's bar and message move, reads its log, cancels it;
launches mining from the form; a physician finds no jobs page."""

from __future__ import annotations

import threading

import pytest

from accounts.models import Role
from inference.models import Job
from inference.services import job_create, job_run
from tests import factories
from tests.annotation import e2e
from tests.annotation.conftest import browser_page, chromium, screenshot  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_researcher_follows_a_running_job_live_and_cancels_it(live_server, browser_page, postgres):  # noqa: F811
    researcher = factories.user(role=Role.RESEARCHER, username="res-eve")
    job = job_create(kind=Job.Kind.IMPORT_CORPUS, parameters={}, by=researcher, enqueue=False)
    stage = {"half": threading.Event(), "stopped": threading.Event()}
    outcome = {}

    def work(row, progress):
        progress.record(device="cpu")
        progress(0.1, "reading notes")
        stage["half"].wait(60)
        progress(0.5, "half of the notes imported")
        # Keep reporting until the cancel from the browser lands: the next report raises.
        while not stage["stopped"].wait(0.2):
            progress(0.5, "half of the notes imported")
        return {}

    def run():
        outcome["job"] = job_run(job_id=job.pk, work=work)
        from django.db import connections

        connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        page, base = browser_page, live_server.url
        e2e.log_in(page, base, "res-eve")
        page.click("#nav-jobs")
        page.wait_for_selector(f"tr[data-job-id='{job.pk}'] .job-status:text('running')")
        page.click(f"a[href='/jobs/{job.pk}/']")
        page.wait_for_selector("#job .job-message:text('reading notes')")
        stage["half"].set()
        page.wait_for_selector("#job .job-message:text('half of the notes imported')")
        assert page.eval_on_selector("#job .job-progress", "el => el.value") == pytest.approx(0.5)
        assert "half of the notes imported" in page.inner_text("#job-log")
        assert page.inner_text("#job .job-attempts") == "1"
        screenshot(page, "jobs-01-running")
        page.click("#cancel")
        page.wait_for_selector("#job .job-status:text('cancelled')")
        thread.join(30)
        assert outcome["job"].status == "cancelled"
        screenshot(page, "jobs-02-cancelled")
    finally:
        stage["half"].set()
        stage["stopped"].set()
        thread.join(30)


def test_a_researcher_launches_mining_from_the_form_and_a_physician_has_no_jobs_page(
    live_server, browser_page, postgres
):  # noqa: F811
    factories.user(role=Role.RESEARCHER, username="res-fay")
    factories.user(role=Role.PHYSICIAN, username="dr-gus")
    sae = factories.sae()
    from features.models import ActivationSet

    sae.activation_set = ActivationSet.objects.create(
        host_model=sae.hook_point.host_model,
        hook_point=sae.hook_point,
        corpus=factories.corpus(),
        artifact_uri="/x",
        n_tokens=1,
    )
    sae.save()
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "res-fay")
    page.goto(f"{base}/jobs/")
    page.select_option("#form-mine select[name=sae]", str(sae.pk))
    page.fill("#form-mine input[name=n_top]", "5")
    page.click("#form-mine button[type=submit]")
    page.wait_for_url(f"{base}/jobs/*/")
    job = Job.objects.get(kind=Job.Kind.MINE_LATENTS)
    assert job.parameters == {"sae_id": sae.pk, "n_top": 5} and job.sent_at is not None
    # The suite's worker may already have taken it (and failed it: the activations are not real files).
    status = page.wait_for_selector("#job .job-status").inner_text().strip()
    assert status in {"queued", "running", "failed", "succeeded"}, status
    page.goto(f"{base}/accounts/login/")
    page.context.clear_cookies()
    e2e.log_in(page, base, "dr-gus")
    assert page.locator("#nav-jobs").count() == 0
    assert page.goto(f"{base}/jobs/").status == 404
