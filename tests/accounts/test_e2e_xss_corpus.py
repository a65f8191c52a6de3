"""XSS corpus in Chromium: every text a user or a corpus can supply carries script, img onerror,
javascript: URL, SVG and attribute-breakout payloads; every view renders them; nothing executes.

Each payload calls window.__xss(n) (defined before any page script runs) or alert(); the test reads the
calls, the dialogs, CSP violation reports and the DOM (no element built from a payload) on every page."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Institution, Profile, Role
from accounts.tokens import api_token_create
from annotation import services
from annotation.models import Assignment, Round
from annotation.services import ConceptSpec
from features.models import Corpus, Latent, LatentExample, Snippet
from inference.models import Job
from tests import factories
from tests.annotation import worlds
from tests.annotation.conftest import browser_page, chromium  # noqa: F401 - fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Two groups, so that each fits the shortest text fields (names of 100-200 characters).
PAYLOADS = [
    "<script>__xss(1)</script>",
    "<img src=x onerror=__xss(2)>",
    "<svg onload=__xss(3)>",
    "<svg><script>__xss(4)</script></svg>",
    "javascript:__xss(5)",
    '"><img src=x onerror=__xss(6)>',
    "'><svg/onload=__xss(7)>",
    '<a href="javascript:__xss(8)">x</a>',
    "<details open ontoggle=__xss(9)>",
    "<iframe srcdoc='<script>parent.__xss(10)</script>'>",
    "</textarea><script>alert(11)</script>",
    "<math><mtext><img src=x onerror=__xss(12)>",
]
GROUPS = [" ".join(PAYLOADS[:6]), " ".join(PAYLOADS[6:])]

INIT = """
window.__xssHits = [];
window.__xss = function (n) { window.__xssHits.push(String(n)); };
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
"""
# Any element that a payload would have created, had it been parsed as HTML rather than shown as text.
DOM_PROBE = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase(), value = attr.value;
      if (name.startsWith('on') && value.includes('__xss')) bad.push(el.tagName + '[' + name + ']');
      if ((name === 'href' || name === 'src' || name === 'action' || name === 'formaction')
          && value.trim().toLowerCase().startsWith('javascript:')) bad.push(el.tagName + '[' + name + ']');
      if (name === 'srcdoc' && value.includes('__xss')) bad.push(el.tagName + '[srcdoc]');
    }
    if (el.tagName === 'SCRIPT' && el.textContent.includes('__xss')) bad.push('SCRIPT');
  }
  return bad;
}"""


def _world(payload: str) -> dict:
    """Every supplied text carries `payload`: institution, corpus, snippets and tokens, SAE, rubric
    (name, guidelines, concept names, descriptions, synonyms), rounds, labels, comments, adjudication,
    specialty, best tag, API token name."""

    def short(n: int) -> str:
        return payload[:n]

    own = factories.institution("own")
    Institution.objects.filter(pk=own.pk).update(name=short(200))
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own, username="coord")
    physician = factories.user(role=Role.PHYSICIAN, institution_obj=own, username="phys")
    colleagues = [factories.user(role=Role.PHYSICIAN, institution_obj=own, username=f"phys{i}") for i in range(2)]
    senior = factories.user(role=Role.SENIOR, institution_obj=own, username="senior")
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=own, username="researcher")
    admin = factories.user(role=Role.ADMIN, institution_obj=own, username="admin")
    Profile.objects.update(specialty=short(120))
    sae = worlds.sae_with_examples(n_latents=3, institution=own, snippet_text=lambda i: f"Note {i}: {payload}")
    Corpus.objects.filter(pk=sae.activation_set.corpus_id).update(name=short(200), description=payload)
    type(sae).objects.filter(pk=sae.pk).update(name=short(200))
    Latent.objects.filter(sae=sae).update(best_tag=short(50))
    for example in LatentExample.objects.filter(latent__sae=sae):
        example.tokens = ["Pt", payload, "noted"]
        example.activations = [0.0, 4.0, 0.5]
        example.save(update_fields=["tokens", "activations"])
    version = services.rubric_create(
        name=short(200),
        description=payload,
        guidelines=payload,
        concepts=[
            ConceptSpec("HF", short(200), "", payload, (short(200),)),
            ConceptSpec("AKI", "Kidney " + short(190)),
        ],
        by=coordinator,
    )
    everyone = [physician, *colleagues, senior]
    calibration = worlds.make_round(
        by=coordinator, sae=sae, version=version, institutions=[own], raters_list=everyone, overlap=4
    )
    Round.objects.filter(pk=calibration.pk).update(name=short(200))
    for index, assignment in enumerate(Assignment.objects.filter(round=calibration).select_related("round", "rater")):
        services.label_submit(
            assignment=assignment,
            concept_code="HF" if index % 2 else "AKI",
            confidence=3,
            free_text=short(300),
            rationale=f"{payload} rationale {index}",
            by=assignment.rater,
        )
    worlds.close_round(round=calibration, by=coordinator)
    services.round_reveal(round=calibration, by=coordinator)
    latent = sae.latents.order_by("index").first()
    services.comment_create(round=calibration, latent=latent, text=payload, by=coordinator)
    Latent.objects.filter(pk=latent.pk).update(status=Latent.Status.AMBIGUOUS)
    open_round = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=version,
        institutions=[own],
        raters_list=[physician, *colleagues],
        overlap=2,
        kind="production",
    )
    Round.objects.filter(pk=open_round.pk).update(name=short(199) + "2")
    decided = sae.latents.order_by("index")[1]
    Latent.objects.filter(pk=decided.pk).update(status=Latent.Status.AMBIGUOUS)
    services.adjudication_record(
        latent=decided, concept=version.concepts.get(code="HF"), rationale=f"{payload} adjudicated", by=senior
    )
    api_token_create(user=physician, name=short(100))
    api_token_create(user=researcher, name=short(100))
    snippet = Snippet.objects.filter(corpus_id=sae.activation_set.corpus_id).first()
    job = Job.objects.create(
        kind=Job.Kind.TRAIN_SAE,
        queue="gpu",
        status=Job.Status.FAILED,
        message=payload,
        parameters={"name": short(200), "sweep_group": short(100), "activation_set_id": sae.activation_set_id},
        created_by=researcher,
    )
    # issue 12/13 pages: a sweep, a failed drift audit and a steering run, each carrying the payload.
    from inference.models import Sweep
    from tests.accounts.access_world import _steering

    sweep = Sweep.objects.create(name=short(200), activation_set=sae.activation_set, created_by=researcher)
    Job.objects.filter(pk=job.pk).update(sweep=sweep)
    drift = Job.objects.create(
        kind=Job.Kind.DRIFT_AUDIT,
        queue="cpu",
        status=Job.Status.FAILED,
        message=payload,
        parameters={"sae_id": sae.pk, "corpus_id": sae.activation_set.corpus_id, "name": short(200)},
        created_by=researcher,
    )
    _, steer_job = _steering(sae=sae, researcher=researcher)
    steer_job.parameters = {**steer_job.parameters, "prompt": payload}
    steer_job.result = {**steer_job.result, "prompt": payload}
    steer_job.save(update_fields=["parameters", "result"])
    return {
        "job": job,
        "sweep": sweep,
        "drift": drift,
        "steer_job": steer_job,
        "coordinator": coordinator,
        "physician": physician,
        "senior": senior,
        "researcher": researcher,
        "admin": admin,
        "sae": sae,
        "calibration": calibration,
        "open": open_round,
        "latent": latent,
        "decided": decided,
        "version": version,
        "snippet": snippet,
    }


def _views(world) -> dict[str, list[str]]:
    c, o, latent = world["calibration"].pk, world["open"].pk, world["latent"].pk
    return {
        "physician": [
            "/",
            "/queue/",
            f"/rounds/{o}/queue/",
            f"/rounds/{o}/items/1/",
            f"/rounds/{o}/items/2/",
            f"/rounds/{c}/queue/",
            f"/rounds/{c}/items/1/",
            f"/rounds/{c}/discussion/",
            "/labelled-latents/",
            f"/labelled-latents/{latent}/",
            "/account/tokens/",
            "/api/v1/assignments/",
            "/api/v1/me/",
            f"/api/v1/rounds/{c}/distribution/",
            f"/api/v1/rounds/{c}/comments/",
        ],
        "coordinator": [
            "/",
            "/rounds/",
            f"/rounds/{c}/",
            f"/rounds/{o}/",
            f"/rounds/{c}/discussion/",
            f"/rounds/{c}/follow-up/new/",
            "/rounds/new/",
            "/rubrics/new/",
            "/export/",
            "/labelled-latents/",
            f"/labelled-latents/{latent}/",
            f"/labelled-latents/{world['decided'].pk}/",
            "/api/v1/rounds/",
            "/api/v1/labels/",
            f"/api/v1/rubric-versions/{world['version'].pk}/",
            "/api/v1/institutions/",
            "/rubrics/",
            f"/rubrics/{world['version'].rubric_id}/",
        ],
        "senior": ["/", "/adjudication/", f"/adjudication/{latent}/", f"/labelled-latents/{world['decided'].pk}/"],
        "researcher": [
            "/",
            "/api/v1/corpora/",
            "/api/v1/saes/",
            f"/api/v1/latents/{latent}/",
            "/api/v1/snippets/",
            "/api/v1/jobs/",
            "/account/tokens/",
            "/export/",
            "/jobs/",
            f"/jobs/{world['job'].pk}/",
            f"/jobs/saes/{world['sae'].pk}/",
            f"/jobs/sweeps/{world['sweep'].pk}/",
            "/explain/",
            f"/steering/{world['steer_job'].pk}/",
            f"/drift/{world['drift'].pk}/",
            f"/protected/{world['sae'].pk}/",
        ],
        "admin": [
            "/admin/",
            "/admin/accounts/auditevent/",
            "/admin/accounts/institution/",
            "/admin/accounts/profile/",
            "/admin/accounts/apitoken/",
            "/admin/features/corpus/",
            f"/admin/features/snippet/{world['snippet'].pk}/change/",
            "/admin/annotation/label/",
            "/admin/annotation/round/",
            "/api/docs/",
        ],
    }


def _log_in(page, base: str, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}])


@pytest.mark.parametrize("group", range(len(GROUPS)))
def test_no_payload_executes_in_any_view(group, live_server, browser_page):
    payload = GROUPS[group]
    world = _world(payload)
    page, base = browser_page, live_server.url
    page.context.add_init_script(INIT)
    problems, rendered, visited = [], 0, 0
    for role, paths in _views(world).items():
        _log_in(page, base, world[role])
        for path in paths:
            response = page.goto(base + path)
            page.wait_for_load_state("load")
            visited += 1
            if response.status >= 500:
                problems.append(f"{role} {path}: HTTP {response.status}")
                continue
            # Give event handlers (onload, ontoggle, onerror of a broken image) their chance to fire.
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")
            hits = page.evaluate("window.__xssHits")
            violations = [v for v in page.evaluate("window.__cspViolations") if v.startswith("script-src")]
            built = page.evaluate(DOM_PROBE)
            if hits or violations or built:
                problems.append(f"{role} {path}: ran {hits}, CSP blocked {violations}, built {built}")
            if PAYLOADS[group * 6] in page.inner_text("body"):
                rendered += 1
    problems += [f"dialog: {message}" for message in page.dialogs]
    assert problems == []
    # The payloads were really on the pages, shown as text: the test is not passing on empty pages.
    assert visited == sum(len(paths) for paths in _views(world).values())
    assert rendered >= 20, rendered
    print(
        f"XSS corpus group {group}: {len(PAYLOADS[group * 6 : group * 6 + 6])} payloads, {visited} views, "
        f"shown as text on {rendered}, executed 0"
    )
