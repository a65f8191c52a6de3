"""In Chromium: a physician pastes a note, sees the concepts with their uncertainty and the audit statement,
and filters the shading by concept; a hostile note renders as text."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests import factories
from tests.annotation import e2e
from tests.annotation.conftest import browser_page, chromium  # noqa: F401 - fixtures
from tests.annotation.e2e import PASSWORD, assert_no_script_ran

from .conftest import register_tiny
from .test_explain import NOTE, _explain_json, _fired_by_token, _label

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
HOSTILE = "<img src=x onerror=alert('note')><script>window.__pwned=1</script>"


def test_physician_explains_a_note_and_filters_by_concept(postgres, live_server, browser_page, tiny_files):  # noqa: F811
    from inference.runtime import cache_clear

    cache_clear()
    world = register_tiny(tiny_files)
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=world.home)
    factories.user(role=Role.PHYSICIAN, institution_obj=world.home, username="dr-eve", password=PASSWORD)
    fired = _fired_by_token(_explain_json(world.sae))
    chest, arm = fired[2][0], fired[8][0]
    _label(
        world,
        coordinator,
        plan={
            chest: {"code": "MI", "top": 0.82, "routing": "consensus"},
            arm: {"code": "HF", "top": 0.45, "entropy": 0.9, "routing": "another_round"},
        },
    )
    page, base = browser_page, live_server.url
    e2e.log_in_by_form(page, base, "dr-eve")  # the one browser walk through the login form itself
    page.goto(f"{base}/explain/")
    assert "not a clinical finding" in page.locator("#disclaimer").inner_text()
    page.select_option("#id_sae", str(world.sae.pk))
    page.fill("#id_text", f"{NOTE} {HOSTILE}")
    with page.expect_navigation():
        page.click("#explain-form button[type=submit]")
    concepts = page.locator("#concepts li.concept")
    assert concepts.count() == 2
    text = page.locator("#concepts").inner_text()
    mi = page.locator("#concepts li.concept[data-code=MI]").inner_text()
    assert "represented Myocardial infarction on '" in mi and "chest" in mi and "consensus of 3 physicians, 0.82" in mi
    assert "ambiguous" in text and "physicians disagreed" in text
    assert HOSTILE in page.locator("#note").inner_text()
    assert_no_script_ran(page)

    def shades() -> dict[str, float]:
        return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#note .tok')].map(
            t => [t.textContent, parseFloat(getComputedStyle(t).getPropertyValue('--a'))]))""")

    before = shades()
    assert before["chest"] > 0 and before["arm"] > 0
    page.click(".concept-filter button[data-code=MI]")
    after = shades()
    assert after["chest"] > 0 and after["arm"] == 0
    assert page.locator("#concepts li.concept[data-code=HF]").is_hidden()
    page.click(".concept-filter button[data-code='']")
    assert shades() == before
