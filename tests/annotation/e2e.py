"""Shared steps of the browser tests: a blind calibration round with a hostile snippet, logging in."""

from __future__ import annotations

from accounts.models import Role
from annotation import services
from annotation.models import Assignment
from features.models import LatentExample
from tests import factories
from tests.annotation import worlds

PASSWORD = "correct-horse-battery"
# Would run if any page rendered clinical text or a rationale unescaped.
SNIPPET_PAYLOAD = "<img src=x onerror=alert('snippet')><script>window.__pwned=1</script>"
RATIONALE_PAYLOAD = "<img src=x onerror=alert('rationale')> is how I read the peak token here"
OTHER_RATIONALE = "Second rater sees renal injury in the peaks"


def blind_round_world():
    """Two institutions, three physicians; a blind calibration round on two latents of a shared corpus,
    already labelled by the two other physicians (one rationale hostile); one top example of each latent
    carries a hostile token."""
    own, other = factories.institution("own"), factories.institution("other")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own, username="coord-dee")
    physician = factories.user(role=Role.PHYSICIAN, institution_obj=own, username="dr-ada")
    colleagues = [
        factories.user(role=Role.PHYSICIAN, institution_obj=own, username="dr-ben"),
        factories.user(role=Role.PHYSICIAN, institution_obj=other, username="dr-cai"),
    ]
    sae = worlds.sae_with_examples(n_latents=2)
    for example in LatentExample.objects.filter(latent__sae=sae, kind="top", rank=0):
        example.tokens = ["Pt", "with", SNIPPET_PAYLOAD, "noted"]
        example.activations = [0.0, 1.0, 5.0, 0.2]
        example.save(update_fields=["tokens", "activations"])
    version = worlds.rubric(by=coordinator, guidelines="Name what the peak token shows. <b>not bold</b>")
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=version,
        institutions=[own, other],
        raters_list=[physician, *colleagues],
        overlap=3,
        min_repeats=0,
    )
    for index, colleague in enumerate(colleagues):
        for assignment in Assignment.objects.filter(round=round_, rater=colleague).select_related("round"):
            services.label_submit(
                assignment=assignment,
                concept_code="AKI" if index else "HF",
                confidence=3,
                rationale=OTHER_RATIONALE if index else RATIONALE_PAYLOAD,
                by=colleague,
            )
    return {
        "coordinator": coordinator,
        "physician": physician,
        "colleagues": colleagues,
        "sae": sae,
        "round": round_,
        "version": version,
        "own": own,
    }


def log_in(page, base_url: str, username: str) -> None:
    """Start `username`'s session the way a stored browser state would: a session made server-side, its
    cookie put in the browser. The login form is walked by its own tests; here it would only add a race
    (Chromium resends a POST whose keep-alive socket the test server closed, and the resent POST fails
    CSRF because the first one already logged in and rotated the token)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(
        get_user_model().objects.get(username=username), backend="django.contrib.auth.backends.ModelBackend"
    )
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": base_url,
            }
        ]
    )
    page.goto(f"{base_url}/")
    assert "/accounts/login/" not in page.url, page.url


def log_in_by_form(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    page.wait_for_url(f"{base_url}/")


def assert_no_script_ran(page) -> None:
    assert page.dialogs == [], page.dialogs
    assert page.evaluate("window.__pwned === undefined")


# The policy the hardening settings send: no inline script or event handler may run. Style attributes
# (token shading, bar widths) stay allowed through style-src-attr.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'"
)


def enforce_strict_csp(page, base_url: str) -> list[str]:
    """Serve every page of `base_url` under STRICT_CSP; returns the list that collects violations."""
    violations: list[str] = []

    def add_header(route):
        response = route.fetch(max_redirects=0)
        headers = {**response.headers, "content-security-policy": STRICT_CSP}
        route.fulfill(response=response, headers=headers)

    page.route(f"{base_url}/**", add_header)
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    return violations
