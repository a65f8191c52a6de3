"""The blind-round matrix: every kind of viewer × round status (draft, open, closed, revealed) × every
label-bearing page, API and export.

One labelled, closed calibration round (its agreement, consensus and reliability computed) is set to each
status in turn, so that the content exists in the database whatever the status says: only the access
policy stands between it and the viewer. A leak is another rater's label (rationale or free-text mark)
that the blind rule forbids, or the round's agreement, consensus or reliability shown to someone who may
not read its content yet, or a search that finds latents by labels the searcher may not read.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from accounts.models import Role
from accounts.permissions import role_of
from annotation.models import Adjudication, Assignment, Label, Round
from tests import factories
from tests.annotation import worlds

from .access_world import api_client, body_text, build_world, label_leaks, label_visible_by_spec, record

pytestmark = pytest.mark.django_db
STATUSES = [Round.Status.DRAFT, Round.Status.OPEN, Round.Status.CLOSED, Round.Status.REVEALED]


def _viewers(world):
    return {
        "physician, rater": world.rater,
        "physician, not a rater": factories.user(role=Role.PHYSICIAN, institution_obj=world.own, username="own_p3"),
        "senior, rater": world.raters[2],
        "senior, not a rater": world.actor(Role.SENIOR, "own"),
        "coordinator, own": world.actor(Role.COORDINATOR, "own"),
        "coordinator, other": world.actor(Role.COORDINATOR, "other"),
        "researcher, own": world.actor(Role.RESEARCHER, "own"),
        "researcher, other": world.actor(Role.RESEARCHER, "other"),
        "admin": world.actor(Role.ADMIN, "own"),
        "physician, other": world.actor(Role.PHYSICIAN, "other"),
        "senior, other": world.actor(Role.SENIOR, "other"),
        "clinician, own": world.actor(Role.CLINICIAN, "own"),
        "senior, rating the adjudicated latent": _senior_rating_the_adjudicated_latent(world),
    }


ADJUDICATION_MARK = "decided on the renal reading"  # the rationale of own_s1's adjudication (access_world)


def _senior_rating_the_adjudicated_latent(world):
    """A senior of own who rates every latent, the adjudicated one too, in an open round of their own and
    is not its adjudicator: another senior's decision on it would anchor them (it was listed to them)."""
    senior = factories.user(role=Role.SENIOR, institution_obj=world.own, username="own_s2")
    worlds.make_round(
        by=world.coordinator,
        sae=world.sae,
        version=world.revealed.rubric_version,
        institutions=[world.own],
        raters_list=[senior],
        overlap=1,
    )
    return senior


def adjudication_visible_by_spec(viewer, world) -> bool:
    """The adjudication rule written out (docs/access.md): never to physicians; to a senior who decided
    it, or who does not still label its latent in a draft or open round; label readers who see the SAE."""
    adjudication = Adjudication.objects.select_related("latent").get(rationale__contains=ADJUDICATION_MARK)
    role = role_of(viewer)
    if role == Role.PHYSICIAN or role is None:
        return False
    if role != Role.ADMIN and viewer.profile.institution_id != world.own.pk:
        return False  # the SAE is private to own
    if role == Role.SENIOR and adjudication.senior_id != viewer.pk:
        return not Assignment.objects.filter(
            latent=adjudication.latent, rater=viewer, round__status__in=[Round.Status.DRAFT, Round.Status.OPEN]
        ).exists()
    return True


def _views(world, viewer) -> dict[str, tuple[str, str]]:
    """name → (url, what besides label marks to look for: "rows", "trend", "csv", "dashboard", "round",
    "search", "page-search" or "")."""
    round_id, sae, latent, ambiguous = world.revealed.pk, world.sae.pk, world.latent.pk, world.ambiguous.pk
    views = {
        "api labels of the round": (f"/api/v1/labels/?round={round_id}", ""),
        "api own labels": ("/api/v1/labels/", ""),
        "api distribution": (f"/api/v1/rounds/{round_id}/distribution/", "rows"),
        "api comments": (f"/api/v1/rounds/{round_id}/comments/", "rows"),
        "api agreement": (f"/api/v1/rounds/{round_id}/agreement/", "rows"),
        "api consensus": (f"/api/v1/rounds/{round_id}/consensus/", "rows"),
        "api reliability": (f"/api/v1/rounds/{round_id}/reliability/", "rows"),
        "api alpha trend": (f"/api/v1/rounds/{round_id}/alpha-trend/", "trend"),
        "api progress": (f"/api/v1/rounds/{round_id}/progress/", ""),
        "api round": (f"/api/v1/rounds/{round_id}/", "round"),
        "api latent labels": (f"/api/v1/labelled-latents/{latent}/", ""),
        "api latent search": (f"/api/v1/labelled-latents/?q={_searched_free_text(world)}", "search"),
        "api adjudication queue": ("/api/v1/adjudication-queue/", ""),
        "api adjudications": ("/api/v1/adjudications/", ""),
        "api latent": (f"/api/v1/latents/{latent}/", ""),
        "export labels of the round": (f"/api/v1/exports/labels/?round={round_id}&format=csv", "csv"),
        "export labels of the SAE": (f"/api/v1/exports/labels/?sae={sae}&format=jsonl", ""),
        "export latents of the round": (f"/api/v1/exports/latents/?round={round_id}&format=csv", "csv"),
        "page dashboard": (f"/rounds/{round_id}/", "dashboard"),
        "page discussion": (f"/rounds/{round_id}/discussion/", ""),
        "page latent": (f"/labelled-latents/{latent}/", ""),
        "page latent search": (f"/labelled-latents/?q={_searched_free_text(world)}", "page-search"),
        "page adjudication": (f"/adjudication/{ambiguous}/", ""),
        "page home": ("/", ""),
        "page queue": ("/queue/", ""),
        "page round queue": (f"/rounds/{round_id}/queue/", ""),
        "page export": (f"/export/?round={round_id}&kind=labels&format=csv", "csv"),
    }
    mine = Assignment.objects.filter(round=world.revealed, rater=viewer).order_by("position").first()
    if mine is not None:
        views["page item"] = (f"/rounds/{round_id}/items/{mine.position}/", "")
        views["api item"] = (f"/api/v1/assignments/{mine.pk}/", "")
    return views


def _searched_label(world) -> Label:
    return Label.objects.get(
        assignment__round=world.revealed,
        assignment__rater=world.raters[1],
        assignment__latent=world.latent,
        assignment__is_repeat=False,
    )


def _searched_free_text(world) -> str:
    return _searched_label(world).free_text


def _content_shown(kind: str, response, text: str) -> bool:
    """Whether the response shows the round's content beyond label marks (statistics, rows, search hits)."""
    if response.status_code != 200:
        return False
    if kind in ("rows", "search"):
        data = json.loads(text)
        return bool(data["results"] if isinstance(data, dict) else data)
    if kind == "trend":
        return any(point["alpha"] is not None for point in json.loads(text) if point["is_current"])
    if kind == "csv":
        is_csv = response.get("Content-Type", "").startswith("text/csv")
        return is_csv and len(list(csv.reader(io.StringIO(text)))) > 1
    if kind == "round":  # the statistics job's message carries α once done
        return "α" in json.loads(text).get("statistics_message", "")
    if kind == "dashboard":
        return 'id="alpha-value"' in text or "<th>Metric</th>" in text
    if kind == "page-search":
        return re.search(r'href="/labelled-latents/\d+/"', text) is not None
    return False


def _content_allowed(role_name: str, status: str) -> bool:
    """Statistics, rows and search hits of the round: its watchers once closed; the distribution and
    comments also its raters once revealed."""
    frozen = status in (Round.Status.CLOSED, Round.Status.REVEALED)
    watcher = role_name in ("coordinator, own", "researcher, own", "admin")
    return frozen and watcher


@pytest.mark.slow
def test_blind_matrix_leaks_nothing(postgres, no_throttles):
    world = build_world()
    viewers = _viewers(world)
    requests, leaks, seen = 0, [], {}
    searched = _searched_free_text(world)
    adjudication_visible = {name: adjudication_visible_by_spec(viewer, world) for name, viewer in viewers.items()}
    for status in STATUSES:
        Round.objects.filter(pk=world.revealed.pk).update(status=status)
        cache: dict = {}
        for role_name, viewer in viewers.items():
            client = api_client(viewer)
            client.raise_request_exception = False
            raters_see_rows = status == Round.Status.REVEALED and role_name in ("physician, rater", "senior, rater")
            searched_visible = label_visible_by_spec(
                viewer, (world.raters[1].username, world.revealed.pk, world.latent.pk)
            )
            for view, (url, kind) in _views(world, viewer).items():
                response = client.get(url)
                requests += 1
                text = body_text(response)
                if kind in ("search", "page-search"):
                    text = text.replace(searched, "")  # the page repeats the query in its search box
                where = f"{role_name} × {status} × {view} ({url}) → {response.status_code}"
                if response.status_code >= 500:
                    leaks.append(f"{where}: server error")
                    continue
                if marks := label_leaks(viewer, text, cache):
                    leaks.append(f"{where}: another rater's label {marks[:2]}")
                if kind in ("rows", "trend", "csv", "dashboard", "round", "search", "page-search"):
                    shown = _content_shown(kind, response, text)
                    allowed = _content_allowed(role_name, status)
                    if kind == "rows" and view in ("api distribution", "api comments"):
                        allowed = allowed or raters_see_rows
                    if kind in ("search", "page-search"):
                        allowed = searched_visible
                    if shown and not allowed:
                        leaks.append(f"{where}: shows the round's {kind} content")
                    if shown:
                        seen[(role_name, status, view)] = True
                if "SECRET-" in text and not label_leaks(viewer, text, cache):
                    seen[(role_name, status, view, "labels")] = True
                if ADJUDICATION_MARK in text:
                    if not adjudication_visible[role_name]:
                        leaks.append(f"{where}: another senior's adjudication of a latent they may not see")
                    seen[(role_name, status, view, "adjudication")] = True
    Round.objects.filter(pk=world.revealed.pk).update(status=Round.Status.REVEALED)
    record(
        "blind",
        {
            "requests": requests,
            "leaks": len(leaks),
            "viewers": len(viewers),
            "statuses": len(STATUSES),
            "views": len(_views(world, world.rater)),
            "allowed_content_seen": len(seen),
        },
    )
    assert not leaks, "\n".join(leaks[:40])
    # The probe sees content where the rule allows it, so the zero above is the policy's, not blindness.
    for expected in [
        ("physician, rater", "revealed", "api distribution", "labels"),
        ("coordinator, own", "closed", "api labels of the round", "labels"),
        ("coordinator, own", "closed", "page dashboard"),
        ("coordinator, own", "closed", "api round"),
        ("researcher, own", "closed", "export labels of the round", "labels"),
        ("senior, not a rater", "closed", "page adjudication", "labels"),
        ("admin", "revealed", "api agreement"),
        ("senior, not a rater", "open", "api adjudications", "adjudication"),
        ("coordinator, own", "open", "api adjudications", "adjudication"),
    ]:
        assert seen.get(expected), f"{expected} shows nothing: the probe would miss a leak there"
