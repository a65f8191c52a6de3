"""In Chromium: a physician labels by keyboard in a blind round; the coordinator closes, sees alpha and
reveals; hostile snippets and rationales render as text."""

from __future__ import annotations

import re

import pytest

from annotation.models import Label, Round
from tests.annotation import e2e
from tests.annotation.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _label_by_keyboard(page, *, search: str, name: str, confidence: str, rationale: str) -> None:
    keyboard = page.keyboard
    keyboard.press("/")
    keyboard.type(search)
    keyboard.press("Enter")  # picks the first match and moves to the free-text name
    keyboard.type(name)
    keyboard.press("Escape")
    keyboard.press(confidence)
    keyboard.press("r")
    keyboard.type(rationale)


def test_physician_labels_by_keyboard_blind_then_coordinator_closes_and_reveals(
    postgres, live_server, browser_page, celery_worker
):
    world = e2e.blind_round_world()
    page, base = browser_page, live_server.url
    round_ = world["round"]

    e2e.log_in(page, base, "dr-ada")
    screenshot(page, "01-physician-home")
    page.goto(f"{base}/rounds/{round_.pk}/queue/")
    with page.expect_navigation(wait_until="load"):  # the keyboard shortcuts below need item.js to have run
        page.click("#continue")
    page.wait_for_selector("#label-form")
    first_url = page.url
    assert page.locator("#item-title").inner_text() == "Item 1 of 2"
    # The form sits beside the evidence: to the right of the snippets, at the same height.
    form_box, evidence_box = page.locator("#label-form").bounding_box(), page.locator("#top-examples").bounding_box()
    assert form_box["x"] > evidence_box["x"] + evidence_box["width"] - 1 and form_box["y"] < evidence_box["y"] + 200
    assert page.locator("link[rel=prefetch]").count() == 1

    _label_by_keyboard(
        page,
        search="heart fail",
        name="HFrEF mention",
        confidence="4",
        rationale="Peaks on failure right after heart, in every top example.",
    )
    assert page.locator("input[name=concept_code]:checked").get_attribute("value") == "HF"
    assert page.locator("input[name=confidence]:checked").get_attribute("value") == "4"
    screenshot(page, "02-physician-item-1-filled")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert page.url != first_url and page.locator("#item-title").inner_text() == "Item 2 of 2"

    _label_by_keyboard(
        page, search="kidney", name="AKI", confidence="3", rationale="Creatinine rose overnight: the peaks sit on it."
    )
    screenshot(page, "03-physician-item-2-filled")
    with page.expect_navigation(url=re.compile(rf".*/rounds/{round_.pk}/queue/$")):
        page.keyboard.press("Control+Enter")
    screenshot(page, "04-physician-queue-done")
    mine = Label.objects.filter(assignment__round=round_, assignment__rater=world["physician"])
    assert sorted(mine.values_list("concept__code", flat=True)) == ["AKI", "HF"]
    assert all(label.time_spent_seconds >= 0 for label in mine)

    # Back to the first item by keyboard: the saved label is there, and no other rater's is.
    page.goto(f"{base}/rounds/{round_.pk}/items/{mine.order_by('submitted_at').first().assignment.position}/")
    with page.expect_navigation():
        page.keyboard.press("j")
    with page.expect_navigation():
        page.keyboard.press("k")
    for text in (e2e.OTHER_RATIONALE, "is how I read the peak token"):
        assert text not in page.content()
    assert page.locator("#co-labels").count() == 0
    # A hostile token in the snippet is shown as text; nothing ran.
    assert page.get_by_text(e2e.SNIPPET_PAYLOAD, exact=True).first.is_visible()
    e2e.assert_no_script_ran(page)
    page.keyboard.press("g")
    assert page.locator("#guidelines").is_visible() and "<b>not bold</b>" in page.locator("#guidelines").inner_text()
    screenshot(page, "05-physician-guidelines")
    page.keyboard.press("Escape")

    # The coordinator closes the round, sees alpha, reveals it.
    page.context.clear_cookies()
    e2e.log_in(page, base, "coord-dee")
    page.goto(f"{base}/rounds/{round_.pk}/")
    page.click("#close-round")
    page.click("#close-confirm")  # closing asks first
    # The statistics job runs on the worker; the dashboard polls it and shows alpha when it ends.
    page.wait_for_selector("#alpha-value", timeout=120_000)
    assert re.match(r"α = -?\d\.\d{3}", page.locator("#alpha-value").inner_text())
    assert "95 % CI" in page.locator("#alpha-ci").inner_text()
    assert page.locator("#round-status").inner_text() == "closed"
    screenshot(page, "06-coordinator-closed-alpha")
    page.click("#reveal-round")
    page.wait_for_selector("#round-status:has-text('revealed')")
    assert Round.objects.get(pk=round_.pk).status == Round.Status.REVEALED
    page.goto(f"{base}/rounds/{round_.pk}/discussion/")
    assert page.get_by_text(e2e.RATIONALE_PAYLOAD).first.is_visible()
    assert "dr-ben" not in page.content() and "dr-cai" not in page.content()
    e2e.assert_no_script_ran(page)
    screenshot(page, "07-coordinator-revealed-distribution")

    # After reveal the physician sees the anonymised distribution too.
    page.context.clear_cookies()
    e2e.log_in(page, base, "dr-ada")
    page.goto(f"{base}/rounds/{round_.pk}/discussion/")
    assert page.get_by_text(e2e.OTHER_RATIONALE).first.is_visible()
    page.fill("textarea[name=text]", "<script>window.__pwned=1</script> I read it as HF.")
    page.locator("form:has(textarea[name=text]) button").first.click()
    page.wait_for_load_state()
    assert page.get_by_text("<script>window.__pwned=1</script> I read it as HF.").first.is_visible()
    e2e.assert_no_script_ran(page)
    screenshot(page, "08-physician-discussion")
