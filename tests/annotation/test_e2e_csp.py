"""In Chromium under a strict Content-Security-Policy: every page works with no inline script."""
from __future__ import annotations

import pytest

from tests.annotation import e2e

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_labelling_page_scripts_run_under_strict_csp(postgres, live_server, browser_page):
    world = e2e.blind_round_world()
    page, base = browser_page, live_server.url
    violations = e2e.enforce_strict_csp(page, base)
    e2e.log_in(page, base, "dr-ada")
    page.goto(f"{base}/rounds/{world['round'].pk}/queue/")
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
    for path in ("/", "/queue/", f"/rounds/{world['round'].pk}/queue/"):
        page.goto(f"{base}{path}")
    page.context.clear_cookies()
    e2e.log_in(page, base, "coord-dee")
    for path in ("/", "/rounds/", f"/rounds/{world['round'].pk}/", "/rounds/new/", "/rubrics/new/"):
        page.goto(f"{base}{path}")
    assert violations == []
    e2e.assert_no_script_ran(page)
