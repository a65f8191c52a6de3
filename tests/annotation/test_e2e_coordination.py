"""In Chromium, the coordination pages as issue 14 asked: closing asks first, the rubric editor derives a
version with the change shown before saving, drafts can be deleted, every link a role sees opens,
error pages carry the navigation, and deadlines are shown, reminded and enforced."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Role
from annotation import services
from annotation.models import Assignment, Label, Round, RubricVersion
from tests import factories
from tests.annotation import e2e, worlds
from tests.annotation.conftest import screenshot
from tests.inference.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _statistics_writer_waits() -> bool:
    """Whether a session waits for the lock on the agreement table (the statistics job's writes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'annotation_agreementreport'::regclass"
        )
        return cursor.fetchone()[0] > 0


def test_closing_asks_first_with_progress_and_the_page_tells_one_story(
    postgres, live_server, browser_page, celery_worker
):
    world = e2e.blind_round_world()
    round_ = world["round"]
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "coord-dee")
    page.goto(f"{base}/rounds/{round_.pk}/")
    done = Label.objects.filter(assignment__round=round_).count()
    total = Assignment.objects.filter(round=round_).count()
    assert page.locator("#stats-pending").is_visible()
    page.click("#close-round")
    dialog = page.locator("#close-dialog")
    assert dialog.is_visible()
    assert f"{done} / {total}" in page.locator("#close-dialog-progress").inner_text()
    screenshot(page, "dashboard-close-confirm")
    page.click("#close-cancel")
    assert not dialog.is_visible()
    assert Round.objects.get(pk=round_.pk).status == Round.Status.OPEN
    page.click("#close-round")
    # The worker computes, then writes every result in one transaction: holding a lock on the agreement
    # table stops it there, so that the page is seen while the job is running, whatever the timing.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE annotation_agreementreport IN EXCLUSIVE MODE")
        with page.expect_navigation():
            page.click("#close-confirm")
        assert page.locator("#round-status").inner_text() == "closed"
        assert "Computed when the round closes" not in page.content()
        # The statistics job runs on the worker: the dashboard shows its progress, not results ...
        assert re.fullmatch(r"Statistics: computing… \d+%", page.locator("#stats-state").inner_text())
        assert page.locator("#stats-progress").is_visible() and page.locator("#alpha-value").count() == 0
        wait_until(_statistics_writer_waits, timeout=120, what="the statistics job to reach its writes")
        # It has reported progress (≥ 5 %) by now, and the polling page shows it.
        page.locator("#stats-percent", has_text=re.compile(r"^[1-9]\d*%$")).wait_for(timeout=30_000)
        screenshot(page, "dashboard-statistics-computing")
    # ... and, polling, shows the results once the job ends.
    page.wait_for_selector("#alpha-value, #stats-missing", timeout=120_000)
    assert page.locator("#stats-status").count() == 0

    # A round closed with no label at all says so, and only so.
    empty = worlds.make_round(
        by=world["coordinator"],
        sae=world["sae"],
        version=world["version"],
        institutions=[world["own"]],
        raters_list=[world["physician"]],
        overlap=1,
    )
    page.goto(f"{base}/rounds/{empty.pk}/")
    page.click("#close-round")
    assert "0 / " in page.locator("#close-dialog-progress").inner_text()
    with page.expect_navigation():
        page.click("#close-confirm")
    page.wait_for_selector("#stats-missing", timeout=120_000)
    assert "Computed when the round closes" not in page.content()
    screenshot(page, "dashboard-closed-empty")


def test_rubric_editor_shows_the_tree_and_the_change_before_saving_a_new_version(postgres, live_server, browser_page):
    world = e2e.blind_round_world()
    rubric = world["version"].rubric
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "coord-dee")
    page.goto(f"{base}/rubrics/")
    page.click(f"text={rubric.name}")
    tree = page.locator("#concept-tree")
    assert "Heart failure" in tree.inner_text() and "HF" in tree.inner_text()
    assert "Reduced or preserved ejection fraction" in tree.inner_text() and "Synonyms: CHF" in tree.inner_text()
    # HF sits under CARDIO in the tree.
    assert "depth-1" in (tree.locator("li", has_text="Heart failure").get_attribute("class") or "")
    screenshot(page, "rubric-editor")

    row = page.locator("#concept-editor tr", has=page.locator("input[value=HF]"))
    row.locator("input[name$=synonyms]").fill("CHF, HFpEF")
    blank_code = page.locator("#concept-editor input[name$='-code']:not([value])").first
    prefix = blank_code.get_attribute("name")[: -len("code")]
    page.fill(f"input[name='{prefix}code']", "PE")
    page.fill(f"input[name='{prefix}name']", "Pulmonary embolism")
    page.fill(f"input[name='{prefix}parent_code']", "CARDIO")
    page.check(f"input[name='{prefix}protected']")  # issue 12: a protected concept is set in the editor
    with page.expect_navigation():
        page.click("#preview")
    diff = page.locator("#rubric-diff").inner_text()
    assert "+ PE Pulmonary embolism under CARDIO" in diff
    assert re.search(r"~ HF synonyms: CHF → CHF, HFpEF", diff), diff
    assert RubricVersion.objects.filter(rubric=rubric).count() == 1  # nothing saved by the preview
    screenshot(page, "rubric-editor-diff")
    with page.expect_navigation():
        page.click("#save-version")
    version = RubricVersion.objects.get(rubric=rubric, version=2)
    assert version.parent.version == 1
    assert version.concepts.get(code="HF").synonyms == ["CHF", "HFpEF"]
    assert version.concepts.get(code="PE").parent_code == "CARDIO"
    assert version.concepts.get(code="PE").protected and not version.concepts.get(code="HF").protected
    assert "latest: v2" in page.locator(".pill").first.inner_text()


def test_follow_up_draft_can_be_deleted_from_its_dashboard(postgres, live_server, browser_page):
    world = e2e.blind_round_world()
    worlds.close_round(round=world["round"], by=world["coordinator"])
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "coord-dee")
    page.goto(f"{base}/rounds/{world['round'].pk}/follow-up/new/")
    with page.expect_navigation():
        page.click("#preview")
    with page.expect_navigation():
        page.click("#create-follow-up")
    draft = Round.objects.get(parent=world["round"])
    assert page.url.endswith(f"/rounds/{draft.pk}/")
    assert draft.rubric_version.concepts.get(code="HF").synonyms == ["CHF"]
    page.accept_dialogs = True
    with page.expect_navigation():
        page.click("#delete-round")
    assert page.url.endswith("/rounds/")
    assert not Round.objects.filter(pk=draft.pk).exists()
    assert "deleted" in page.content()


def _crawl(page, base: str, start: str, limit: int = 60) -> dict[str, int]:
    """Every same-site link reachable from `start` (GET only; no logout, admin or API docs) → status."""
    seen: dict[str, int] = {}
    queue = [start]
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        response = page.request.get(f"{base}{path}", max_redirects=0)
        seen[path] = response.status
        if response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
            continue
        for href in re.findall(r'href="(/[^"#?]*)', response.text()):
            if not href.startswith(("/static/", "/api/", "/admin/", "/accounts/")) and href not in seen:
                queue.append(href)
    return seen


def test_no_link_a_role_sees_answers_403_and_error_pages_carry_navigation(postgres, live_server, browser_page):
    world = e2e.blind_round_world()
    worlds.close_round(round=world["round"], by=world["coordinator"])
    services.round_reveal(round=world["round"], by=world["coordinator"])
    factories.user(role=Role.RESEARCHER, institution_obj=world["own"], username="res-eve")
    page, base = browser_page, live_server.url
    for username in ("dr-ada", "coord-dee", "res-eve"):
        page.context.clear_cookies()
        e2e.log_in(page, base, username)
        statuses = _crawl(page, base, "/")
        assert len(statuses) > 3, statuses
        refused = {path: status for path, status in statuses.items() if status >= 400}
        assert refused == {}, (username, refused)
    # dr-ada is a physician: the round list shows no dashboard links.
    page.context.clear_cookies()
    e2e.log_in(page, base, "dr-ada")
    page.goto(f"{base}/rounds/")
    assert page.locator(f"a[href='/rounds/{world['round'].pk}/']").count() == 0
    # Typed by hand, the dashboard answers a 403 page with the site's navigation, and a 404 likewise.
    response = page.goto(f"{base}/rounds/{world['round'].pk}/")
    assert response.status == 403
    assert page.locator("#error-403").is_visible() and page.locator("header nav.site a", has_text="My queue").count()
    screenshot(page, "error-403")
    response = page.goto(f"{base}/no/such/page/")
    assert response.status == 404
    assert page.locator("#error-404").is_visible() and page.locator("header nav.site a", has_text="My queue").count()


def test_deadline_is_shown_reminded_and_enforced_on_the_pages(postgres, live_server, browser_page):
    world = e2e.blind_round_world()
    round_ = world["round"]
    Round.objects.filter(pk=round_.pk).update(deadline=timezone.now() + timedelta(hours=5))
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "coord-dee")
    page.goto(f"{base}/rounds/{round_.pk}/")
    reminder = page.locator("#deadline-reminder").inner_text()
    assert re.search(r"Deadline in 4\s+hours", reminder) and "2 left" in reminder, reminder
    # Each rater's last activity: the two who labelled have one, dr-ada has none yet.
    activity = page.locator("#progress-raters td.last-activity").all_inner_texts()
    assert sorted(text.endswith("ago") for text in activity) == [False, True, True], activity
    assert activity.count("never") == 1
    screenshot(page, "dashboard-deadline")

    Round.objects.filter(pk=round_.pk).update(deadline=timezone.now() - timedelta(minutes=5))
    page.context.clear_cookies()
    e2e.log_in(page, base, "dr-ada")
    assignment = Assignment.objects.filter(round=round_, rater=world["physician"]).order_by("position").first()
    page.goto(f"{base}/rounds/{round_.pk}/items/{assignment.position}/")
    assert "deadline of this round passed" in page.locator("#locked").inner_text()
    assert page.locator("#submit").is_disabled() and page.locator("#id_rationale").is_disabled()
    # A submission that gets through anyway (a page left open) is refused with the same message.
    response = page.request.post(
        f"{base}/rounds/{round_.pk}/items/{assignment.position}/",
        form={
            "csrfmiddlewaretoken": page.locator("input[name=csrfmiddlewaretoken]").first.input_value(),
            "concept_code": "HF",
            "confidence": "3",
            "rationale": "Peaks on failure after heart, every time.",
        },
    )
    assert "deadline of this round passed" in response.text()
    assert not Label.objects.filter(assignment=assignment).exists()
