"""In Chromium under a strict Content-Security-Policy: every page works with no inline script."""

from __future__ import annotations

import pytest

from tests.annotation import e2e

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_labelling_page_scripts_run_under_strict_csp(postgres, live_server, browser_page):
    world = e2e.blind_round_world()
    page, base = browser_page, live_server.url
    violations = e2e.enforce_strict_csp(page, base)
    e2e.log_in(page, base, "dr-ada")
    page.goto(f"{base}/rounds/{world['round'].pk}/queue/")
    # Until "load" the page's scripts (fetched through the CSP route, so later than usual) may not have run yet.
    with page.expect_navigation(wait_until="load"):
        page.click("#continue")
    page.wait_for_selector("#label-form")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "concept-search"
    page.keyboard.type("kidney")
    page.keyboard.press("Enter")
    assert page.locator("input[name=concept_code]:checked").get_attribute("value") == "AKI"
    page.keyboard.press("Escape")
    page.keyboard.press("g")
    assert page.locator("#guidelines").is_visible()
    page.accept_dialogs = True  # leave the unsaved item (its leave-page warning is tested elsewhere)
    for path in ("/", "/queue/", f"/rounds/{world['round'].pk}/queue/"):
        page.goto(f"{base}{path}")
    assert page.dialogs == [""]  # the one leave-page warning (beforeunload has no text of its own)
    page.dialogs.clear()
    page.accept_dialogs = False
    page.context.clear_cookies()
    e2e.log_in(page, base, "coord-dee")
    for path in (
        "/",
        "/rounds/",
        f"/rounds/{world['round'].pk}/",
        "/rounds/new/",
        "/rubrics/new/",
        "/rubrics/",
        f"/rubrics/{world['version'].rubric_id}/",
    ):
        page.goto(f"{base}{path}")
    page.goto(f"{base}/rounds/{world['round'].pk}/")
    page.click("#close-round")
    assert page.locator("#close-dialog").is_visible()
    assert violations == []
    e2e.assert_no_script_ran(page)
