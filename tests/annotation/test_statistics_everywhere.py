"""A closed round whose statistics are still computing says so everywhere (issue 11, item 4): every page,
API and export that shows a round's statistics or the consensus they feed asks one selector
(annotation/selectors/statistics.py) and says "computing", "failed" or nothing, request by request.

The statistics job is never sent here (on_commit does not fire inside a test's transaction): a closed round
stays `queued` until the test runs the job as a worker would (`round_statistics_run`)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from annotation import services
from annotation.models import Round
from features.models import Latent
from tests import factories
from tests.annotation import worlds
from tests.annotation.conftest import client_for

pytestmark = pytest.mark.django_db
STATES = ["pending", "done", "failed"]
BOOM = "Statistics are computed for closed rounds"  # the reason a real failed computation gives (see _fail)


@pytest.fixture
def world(postgres):
    """A labelled calibration round of `own`, closed (its statistics queued); its coordinator, an own
    researcher, an admin and its three raters."""
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
    raters = [factories.user(role=Role.PHYSICIAN, institution_obj=own) for _ in range(3)]
    sae = worlds.sae_with_examples(n_latents=4, institution=own)
    version = worlds.rubric(by=coordinator)
    round_ = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=3
    )
    worlds.label_everything(round_, choose=lambda a: "HF" if a.latent.index % 2 else "AKI")
    services.round_close(round=round_, by=coordinator)
    round_.refresh_from_db()
    return {
        "round": round_,
        "coordinator": coordinator,
        "researcher": factories.user(role=Role.RESEARCHER, institution_obj=own),
        "admin": factories.user(role=Role.ADMIN, institution_obj=own),
        "raters": raters,
        "sae": sae,
        "latent": sae.latents.order_by("index").first(),
    }


def _run(round_: Round) -> str:
    round_.refresh_from_db()
    status = services.round_statistics_run(round_id=round_.pk, token=round_.statistics_token)
    round_.refresh_from_db()
    return status


def _fail(round_: Round) -> None:
    """A real failed computation: the data changed under the job (the round reopened behind the service's
    back), so the job refuses and ends `failed`; then the round is closed again."""
    status = round_.status
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.OPEN)
    assert _run(round_) == "failed"
    Round.objects.filter(pk=round_.pk).update(status=status)
    round_.refresh_from_db()


def _into(state: str, round_: Round) -> None:
    """pending: the job running at 40 %; done: the job ran; failed: it failed."""
    if state == "pending":
        Round.objects.filter(pk=round_.pk).update(
            statistics_status="running", statistics_progress=0.4, statistics_message="consensus of 4 latents"
        )
    elif state == "done":
        assert _run(round_) == "done"
    else:
        _fail(round_)
    round_.refresh_from_db()


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _notice(text: str) -> str:
    """What the shared banner (annotation/_statistics_notice.html) says: '' when there is none."""
    if 'id="statistics-notice"' not in text:
        return ""
    start = text.index('id="statistics-notice"')
    return text[start : text.index("</div>", start)]


def _assert_notice(text: str, state: str, *, recompute: bool) -> None:
    notice = _notice(text)
    if state == "done":
        assert notice == ""
        return
    if state == "pending":
        assert 'data-status="running"' in notice and "Statistics computing… 40%" in notice
        assert "Statistics still computing for" in notice and "(40%)" in notice
    else:
        assert 'data-status="failed"' in notice and "Statistics failed" in notice and BOOM in notice
    assert ("Recompute statistics of" in notice) == (recompute and state == "failed")


# -- pages ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_the_round_list_and_home_show_the_statistics_status(world, state):
    round_ = world["round"]
    _into(state, round_)
    expected = {
        "pending": ('data-statistics="running"', "statistics computing 40%"),
        "done": ('data-statistics="done"', ">done<"),
        "failed": ('data-statistics="failed"', "statistics failed"),
    }[state]
    browser = _browser(world["coordinator"])
    for url in ("/rounds/", "/"):
        text = browser.get(url).content.decode()
        row = text[text.index(f'href="/rounds/{round_.pk}/"') :].split("</tr>")[0]
        assert all(part in row for part in expected), (url, row)
        assert "Statistics" in text


@pytest.mark.parametrize("state", STATES)
def test_the_latent_page_and_the_adjudication_pages_say_so(world, state):
    _into(state, world["round"])
    latent = world["latent"]
    Latent.objects.filter(pk=latent.pk).update(status=Latent.Status.AMBIGUOUS)  # in the adjudication queue
    admin = _browser(world["admin"])  # an admin reads latents, adjudicates and may recompute
    for url in (f"/labelled-latents/{latent.pk}/", "/adjudication/", f"/adjudication/{latent.pk}/"):
        response = admin.get(url)
        assert response.status_code == 200, url
        _assert_notice(response.content.decode(), state, recompute=True)
    # A researcher is told too, without a Recompute button (not theirs to press).
    text = _browser(world["researcher"]).get(f"/labelled-latents/{latent.pk}/").content.decode()
    _assert_notice(text, state, recompute=False)


@pytest.mark.parametrize("state", STATES)
def test_the_discussion_of_a_revealed_round_being_recomputed_says_so(world, state):
    round_, coordinator = world["round"], world["coordinator"]
    assert _run(round_) == "done"
    services.round_reveal(round=round_, by=coordinator)
    if state != "done":
        services.round_statistics_request(round=round_, by=coordinator)  # "Recompute statistics" after reveal
        _into(state, round_)
    text = _browser(coordinator).get(f"/rounds/{round_.pk}/discussion/").content.decode()
    _assert_notice(text, state, recompute=True)
    # A rater hears that they compute, never the job's message (which carries α once done).
    text = _browser(world["raters"][0]).get(f"/rounds/{round_.pk}/discussion/").content.decode()
    notice = _notice(text)
    assert bool(notice) == (state != "done") and BOOM not in notice and "consensus of 4 latents" not in notice


def test_the_dashboard_shows_the_job_then_the_results_and_reveals_only_when_done(world):
    round_, coordinator = world["round"], world["coordinator"]
    browser = _browser(coordinator)
    text = browser.get(f"/rounds/{round_.pk}/").content.decode()
    assert "Statistics: computing…" in text and 'id="alpha-value"' not in text
    assert 'id="reveal-round" disabled' in text
    response = browser.post(f"/rounds/{round_.pk}/reveal/", follow=True)
    assert "revealed once its statistics are done: they are still computing (0%)" in response.content.decode()
    assert Round.objects.get(pk=round_.pk).status == Round.Status.CLOSED

    _fail(round_)
    text = browser.get(f"/rounds/{round_.pk}/").content.decode()
    assert "Statistics failed" in text and BOOM in text and 'id="reveal-round" disabled' in text

    assert _run(round_) == "dropped"  # a failed request is not rerun by a redelivery: Recompute it
    browser.post(f"/rounds/{round_.pk}/statistics/")
    assert _run(round_) == "done"
    text = browser.get(f"/rounds/{round_.pk}/").content.decode()
    assert 'id="alpha-value"' in text and "computing…" not in text and 'id="reveal-round" disabled' not in text
    browser.post(f"/rounds/{round_.pk}/reveal/")
    assert Round.objects.get(pk=round_.pk).status == Round.Status.REVEALED


@pytest.mark.parametrize("state", ["pending", "failed"])
def test_reveal_is_refused_until_the_statistics_succeeded(world, state):
    round_ = world["round"]
    _into(state, round_)
    response = client_for(world["coordinator"]).post(f"/api/v1/rounds/{round_.pk}/reveal/")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "revealed once its statistics are done" in detail
    assert ("still computing (40%)" in detail) if state == "pending" else (BOOM in detail and "recompute" in detail)
    assert Round.objects.get(pk=round_.pk).status == Round.Status.CLOSED


# -- APIs ----------------------------------------------------------------------------------------------


def _assert_api_state(response, state: str) -> None:
    expected = {"pending": "running", "done": "done", "failed": "failed"}[state]
    assert response.status_code == 200, response.content
    assert response["X-Statistics-Status"] == expected
    assert response.get("X-Statistics-Message") == {"pending": "still computing", "failed": "failed"}.get(state)
    assert float(response["X-Statistics-Progress"]) == {"pending": 0.4, "done": 1.0, "failed": 0.0}[state]
    body = response.json()
    if isinstance(body, dict):
        statistics = body["statistics"]
        assert (statistics["status"], statistics["pending"]) == (expected, state == "pending")
        assert [row["status"] for row in statistics["rounds"]] == ([] if state == "done" else [expected])


@pytest.mark.parametrize("state", STATES)
def test_every_api_of_statistics_or_consensus_carries_their_status(world, state):
    round_, latent, sae = world["round"], world["latent"], world["sae"]
    _into(state, round_)
    coordinator, admin = client_for(world["coordinator"]), client_for(world["admin"])
    for part in ("agreement", "consensus", "reliability", "alpha-trend"):
        _assert_api_state(coordinator.get(f"/api/v1/rounds/{round_.pk}/{part}/"), state)
    _assert_api_state(coordinator.get(f"/api/v1/labelled-latents/{latent.pk}/"), state)
    _assert_api_state(coordinator.get(f"/api/v1/labelled-latents/?sae={sae.pk}"), state)
    _assert_api_state(admin.get("/api/v1/adjudication-queue/"), state)
    detail = coordinator.get(f"/api/v1/rounds/{round_.pk}/").json()
    assert detail["statistics_status"] == {"pending": "running", "done": "done", "failed": "failed"}[state]


def test_no_data_is_told_apart_from_pending(world):
    """An SAE with no closed round says `none`: a client can tell 'no consensus yet' from 'computing'."""
    other_sae = worlds.sae_with_examples(n_latents=2, institution=world["sae"].activation_set.corpus.institution)
    response = client_for(world["coordinator"]).get(f"/api/v1/labelled-latents/?sae={other_sae.pk}")
    assert response["X-Statistics-Status"] == "none" and response.json()["statistics"]["pending"] is False
    response = client_for(world["coordinator"]).get(f"/api/v1/labelled-latents/?sae={world['sae'].pk}")
    assert response["X-Statistics-Status"] == "queued" and response.json()["statistics"]["pending"] is True


def test_a_rater_reads_the_statistics_status_but_not_the_agreement_in_the_message(world):
    round_ = world["round"]
    _into("done", round_)
    rater = client_for(world["raters"][0]).get(f"/api/v1/rounds/{round_.pk}/").json()
    assert (rater["statistics_status"], rater["statistics_message"]) == ("done", "")
    coordinator = client_for(world["coordinator"]).get(f"/api/v1/rounds/{round_.pk}/").json()
    assert "α = " in coordinator["statistics_message"]


# -- exports -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("scope", ["round", "sae"])
def test_the_latent_export_waits_for_the_statistics_and_the_label_export_does_not(world, state, scope):
    round_, sae = world["round"], world["sae"]
    _into(state, round_)
    query = {"round": round_.pk} if scope == "round" else {"sae": sae.pk}
    api = client_for(world["coordinator"])
    response = api.get("/api/v1/exports/latents/", {**query, "format": "csv"})
    if state == "done":
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        assert len(b"".join(response.streaming_content).decode().splitlines()) > 1
    else:
        assert response.status_code == 409 and response["Content-Type"].startswith("application/json")
        body = response.json()
        assert f"'{round_.name}'" in body["detail"]
        assert ("still computing" in body["detail"]) == (state == "pending")
        assert body["statistics"]["status"] == {"pending": "running", "failed": "failed"}[state]
    labels = api.get("/api/v1/exports/labels/", {**query, "format": "csv"})
    assert labels.status_code == 200 and labels["Content-Type"].startswith("text/csv")

    page = _browser(world["coordinator"]).get("/export/", {**query, "kind": "latents", "format": "csv"})
    assert page.status_code == 200
    if state == "done":
        assert page["Content-Disposition"].startswith("attachment")
    else:
        assert "Content-Disposition" not in page
        _assert_notice(page.content.decode(), state, recompute=True)
        assert "Export the latents when their statistics are done" in page.content.decode()
