"""Server-rendered pages: role gates through the permission module, escaping, CSRF, state messages."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from annotation.models import Assignment, Label
from features.models import Latent, LatentExample
from tests.annotation import worlds
from tests.annotation.conftest import ROLES, WHERE, actor, own_assignment

pytestmark = pytest.mark.django_db
PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _pages(world):
    revealed, open_round = world["revealed"].pk, world["open"].pk
    latent = world["sae"].latents.get(index=0).pk
    return {
        "home": "/",
        "queue": "/queue/",
        "round-queue": f"/rounds/{open_round}/queue/",
        "item": f"/rounds/{open_round}/items/{own_assignment(world).position}/",
        "rounds": "/rounds/",
        "round-new": "/rounds/new/",
        "dashboard": f"/rounds/{revealed}/",
        "discussion": f"/rounds/{revealed}/discussion/",
        "follow-up": f"/rounds/{revealed}/follow-up/new/",
        "rubric-new": "/rubrics/new/",
        "adjudication": "/adjudication/",
        "adjudicate": f"/adjudication/{latent}/",
        "browser": "/labelled-latents/",
        "latent": f"/labelled-latents/{latent}/",
        "export": "/export/",
    }


def _expected(role, where):
    rater = (role, where) == (Role.PHYSICIAN, "own")
    manager = (role, where) in {(Role.COORDINATOR, "own"), (Role.ADMIN, "own"), (Role.ADMIN, "other")}
    watcher = manager or (role, where) == (Role.RESEARCHER, "own")
    labeller = role in (Role.PHYSICIAN, Role.SENIOR)
    reader = role in (Role.RESEARCHER, Role.COORDINATOR, Role.ADMIN)
    sees_sae = where == "own" or role == Role.ADMIN
    return {
        # Raters follow their rounds from their queue: /rounds/ sends them there (it listed dashboards
        # that answered 403).
        "home": 200,
        "queue": 200 if labeller else 403,
        "round-queue": 200 if rater else (404 if labeller else 403),
        "item": 200 if rater else (404 if labeller else 403),
        "rounds": 302 if labeller else 200,
        "round-new": 200 if role in (Role.COORDINATOR, Role.ADMIN) else 403,
        # A round on an SAE the user may not see does not exist for them.
        "dashboard": 200 if watcher else (403 if rater else 404),
        "discussion": 200 if watcher or rater else 404,
        "follow-up": 200 if manager else (404 if role == Role.COORDINATOR else 403),
        "rubric-new": 200 if role in (Role.COORDINATOR, Role.ADMIN) else 403,
        "adjudication": 200 if role in (Role.SENIOR, Role.ADMIN) else 403,
        # Only latents in the senior's queue (ambiguous after closed rounds); this one is not.
        "adjudicate": 404 if role in (Role.SENIOR, Role.ADMIN) else 403,
        "browser": 200 if reader else 403,
        "latent": (200 if sees_sae else 404) if reader else 403,
        "export": 200 if reader else 403,
    }


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("role", ROLES)
def test_every_page_asks_the_permission_module(api_world, role, where):
    client = _client(actor(api_world, role, where))
    expected = _expected(role, where)
    got = {name: client.get(url).status_code for name, url in _pages(api_world).items()}
    assert got == expected


def test_anonymous_visitors_are_sent_to_log_in(api_world):
    for url in _pages(api_world).values():
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_clinical_text_and_rationales_are_escaped(api_world):
    example = LatentExample.objects.filter(latent__sae=api_world["sae"], kind="top").first()
    example.tokens = ["Pt", PAYLOAD, "denies"]
    example.activations = [0.1, 4.0, 0.0]
    example.save()
    Label.objects.filter(assignment__round=api_world["revealed"]).update(rationale=f"Because {PAYLOAD} here")
    rater = _client(api_world["raters"][0])
    assignment = Assignment.objects.filter(
        round=api_world["open"], rater=api_world["raters"][0], latent=example.latent
    ).first()
    pages = [rater.get(f"/rounds/{api_world['open'].pk}/items/{assignment.position}/").content.decode()]
    pages.append(rater.get(f"/rounds/{api_world['revealed'].pk}/discussion/").content.decode())
    coordinator = _client(api_world["coordinator"])
    pages.append(coordinator.get(f"/labelled-latents/{example.latent_id}/").content.decode())
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in pages[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[1]


def test_labelling_page_hides_anchoring_information(api_world):
    assignment = own_assignment(api_world)
    latent = assignment.latent
    Latent.objects.filter(pk=latent.pk).update(best_tag="SECRET_TAG")
    html = (
        _client(api_world["raters"][0])
        .get(f"/rounds/{api_world['open'].pk}/items/{assignment.position}/")
        .content.decode()
    )
    for anchoring in ("SECRET_TAG", "tag_entropy", "Consensus", "posterior", f"Latent {latent.index}"):
        assert anchoring not in html, anchoring
    assert "Item " in html


def test_label_form_saves_and_moves_on_then_refuses_after_close(api_world):
    rater = api_world["raters"][0]
    client = _client(rater)
    items = list(Assignment.objects.filter(round=api_world["open"], rater=rater).order_by("position"))
    url = f"/rounds/{api_world['open'].pk}/items/{items[0].position}/"
    form = {
        "concept_code": "HF",
        "confidence": "4",
        "free_text": "",
        "time_spent_seconds": "12",
        "rationale": "The peak sits on failure after heart.",
        "idempotency_key": "web-1",
    }
    response = client.post(url, form)
    assert response.status_code == 302 and response["Location"].endswith(f"/items/{items[1].position}/")
    assert client.post(url, form).status_code == 302
    label = Label.objects.get(assignment=items[0])
    assert (
        label.time_spent_seconds == 12
        and Label.objects.filter(assignment__rater=rater, assignment__round=api_world["open"]).count() == 1
    )
    short = client.post(url, {**form, "rationale": "short", "idempotency_key": "web-2"})
    assert short.status_code == 200 and "at least 20" in short.content.decode()
    worlds.close_round(round=api_world["open"], by=api_world["coordinator"])
    closed = client.post(url, {**form, "concept_code": "AF", "idempotency_key": "web-3"}, follow=True)
    assert "labels are immutable" in closed.content.decode()
    assert Label.objects.get(assignment=items[0]).concept.code == "HF"


def test_round_actions_show_refusals_as_messages(api_world):
    client = _client(api_world["coordinator"])
    response = client.post(f"/rounds/{api_world['revealed'].pk}/open/", follow=True)
    assert response.status_code == 200 and "Only a draft round can be opened" in response.content.decode()
    response = client.post(f"/rounds/{api_world['open'].pk}/reveal/", follow=True)
    assert "Only calibration rounds are revealed" in response.content.decode()


def test_forms_need_the_csrf_token(api_world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(api_world["coordinator"])
    assert client.post(f"/rounds/{api_world['open'].pk}/close/").status_code == 403
    rater = Client(enforce_csrf_checks=True)
    rater.force_login(api_world["raters"][0])
    item = own_assignment(api_world)
    response = rater.post(f"/rounds/{api_world['open'].pk}/items/{item.position}/", {"concept_code": "HF"})
    assert response.status_code == 403


def test_export_page_downloads_the_file(api_world):
    client = _client(api_world["coordinator"])
    response = client.get(f"/export/?round={api_world['revealed'].pk}&kind=labels&format=csv")
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert len(lines) - 1 == Label.objects.filter(assignment__round=api_world["revealed"]).count()
    assert "rater-own" not in "\n".join(lines)
    assert client.get("/export/?kind=labels&format=csv").status_code == 200  # no scope: the form, with its error
