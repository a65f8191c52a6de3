"""In Chromium with every outside address blocked: /api/docs/ renders Swagger UI from our own static
files, under the Content-Security-Policy; the token page works there too."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from django.test import Client

from accounts.models import ApiToken, Role
from tests import factories
from tests.annotation.conftest import browser_page, chromium  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""


def _offline(page, base: str) -> list[str]:
    """Abort every request that leaves the test server, as on a hospital network with no internet."""
    host = urlparse(base).netloc
    outside: list[str] = []

    def route(route_):
        if urlparse(route_.request.url).netloc == host:
            route_.continue_()
        else:
            outside.append(route_.request.url)
            route_.abort()

    page.route("**/*", route)
    page.context.add_init_script(CSP_PROBE)
    return outside


def _log_in(page, base: str, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}])


def test_swagger_ui_renders_offline_under_the_csp(live_server, browser_page):
    page, base = browser_page, live_server.url
    outside = _offline(page, base)
    _log_in(page, base, factories.user(role=Role.RESEARCHER))
    page.goto(f"{base}/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock-tag", timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() >= 40
    assert page.get_by_text("Concord API").first.is_visible()
    assert outside == []
    assert page.evaluate("window.__cspViolations") == []
    assert page.dialogs == []


def test_token_page_creates_and_revokes_in_the_browser(live_server, browser_page):
    page, base = browser_page, live_server.url
    outside = _offline(page, base)
    _log_in(page, base, factories.user(role=Role.RESEARCHER, username="res"))
    page.goto(f"{base}/")
    page.click("text=API tokens")
    page.fill("#id_name", "laptop script")
    page.click("text=Create token")
    secret = page.inner_text("#new-token-secret")
    assert secret.startswith("cnc_")
    assert ApiToken.objects.get(name="laptop script").key_hash == ApiToken.digest(secret)
    page.click("#tokens >> text=Revoke")
    page.wait_for_selector("#tokens >> text=revoked")
    assert ApiToken.objects.get(name="laptop script").revoked_at is not None
    assert outside == [] and page.evaluate("window.__cspViolations") == []
