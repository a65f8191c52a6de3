"""Round endpoints: every transition through the API (409 for illegal ones) and every role × institution."""

from __future__ import annotations

import pytest

from accounts.models import Role
from annotation import services
from annotation.models import Comment, Round
from tests.annotation.conftest import ROLES, WHERE, actor, client_for, set_status

pytestmark = pytest.mark.django_db
MANAGERS = {(Role.COORDINATOR, "own"), (Role.ADMIN, "own"), (Role.ADMIN, "other")}
WATCHERS = MANAGERS | {(Role.RESEARCHER, "own")}  # researchers of `other` may not see the private SAE


def _round_payload(world, **overrides):
    return {
        "name": "API round",
        "kind": "calibration",
        "sae": world["sae"].pk,
        "rubric_version": world["version"].pk,
        "institutions": ["own"],
        "overlap": 2,
        "repeat_fraction": 0.0,
        "blind": True,
        "selection_rule": "hand",
        "latent_indices": [0, 1, 2],
        **overrides,
    }


def test_lifecycle_through_the_api(api_world):
    client = client_for(api_world["coordinator"])
    response = client.post("/api/v1/rounds/create/", _round_payload(api_world), format="json")
    assert response.status_code == 201, response.content
    round_id = response.json()["id"]
    assert response.json()["status"] == "draft"

    def post(action, expected):
        result = client.post(f"/api/v1/rounds/{round_id}/{action}/", format="json")
        assert result.status_code == expected, (action, result.content)
        return result.json()

    assert "Only an open round can be closed" in post("close", 409)["detail"]
    assert post("reveal", 409)["detail"].startswith("Only a closed round")
    assert post("statistics", 409)["detail"]
    assert post("open", 200)["status"] == "open"
    assert post("open", 409)["detail"]
    assert post("follow-up", 400)  # no guidelines given
    assert post("close", 200)["status"] == "closed"
    assert "Only a draft round" in post("open", 409)["detail"]
    assert post("statistics", 200)["status"] == "closed"
    # Not revealed while the statistics job has not run (in this test's transaction it is never sent) ...
    refused = post("reveal", 409)["detail"]
    assert "revealed once its statistics are done" in refused and "still computing (0%)" in refused
    assert Round.objects.get(pk=round_id).status == Round.Status.CLOSED
    # ... and revealed once it ends, as a worker would run it.
    round_ = Round.objects.get(pk=round_id)
    assert services.round_statistics_run(round_id=round_id, token=round_.statistics_token) == "done"
    assert post("reveal", 200)["status"] == "revealed"
    assert post("reveal", 409)["detail"]
    follow_up = client.post(
        f"/api/v1/rounds/{round_id}/follow-up/", {"guidelines": "v2: name the finding."}, format="json"
    )
    assert follow_up.status_code == 201 and follow_up.json()["parent"] == round_id
    trend = client.get(f"/api/v1/rounds/{follow_up.json()['id']}/alpha-trend/").json()
    assert [point["round_id"] for point in trend] == [round_id, follow_up.json()["id"]]


def test_production_round_reveal_is_a_conflict(api_world):
    client = client_for(api_world["coordinator"])
    round_id = api_world["open"].pk
    assert client.post(f"/api/v1/rounds/{round_id}/close/").status_code == 200
    response = client.post(f"/api/v1/rounds/{round_id}/reveal/")
    assert response.status_code == 409 and "Only calibration rounds" in response.json()["detail"]


def test_round_create_validation(api_world):
    client = client_for(api_world["coordinator"])
    assert client.post("/api/v1/rounds/create/", _round_payload(api_world, overlap=9), format="json").status_code == 400
    assert (
        client.post(
            "/api/v1/rounds/create/", _round_payload(api_world, institutions=["own", "other"]), format="json"
        ).status_code
        == 400
    )  # other may not see the private corpus
    assert (
        client.post("/api/v1/rounds/create/", _round_payload(api_world, kind="bogus"), format="json").status_code == 400
    )
    response = client.post(
        "/api/v1/rounds/create/",
        _round_payload(api_world, raters=[r.profile.pseudonym for r in api_world["raters"][:2]]),
        format="json",
    )
    assert response.status_code == 201


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("role", ROLES)
def test_transitions_need_a_manager_of_the_round(api_world, role, where):
    client = client_for(actor(api_world, role, where))
    round_ = api_world["open"]
    allowed = (role, where) in MANAGERS
    cases = [("draft", "open"), ("open", "close"), ("closed", "statistics")]
    for before, action in cases:
        set_status(round_, before)
        response = client.post(f"/api/v1/rounds/{round_.pk}/{action}/")
        if allowed:
            assert response.status_code == 200, (action, response.content)
        else:
            assert response.status_code in (403, 404), (action, response.status_code)
            assert Round.objects.get(pk=round_.pk).status == before
    calibration = api_world["revealed"]
    set_status(calibration, "closed")
    response = client.post(f"/api/v1/rounds/{calibration.pk}/reveal/")
    assert response.status_code == 200 if allowed else response.status_code in (403, 404)
    response = client.post(f"/api/v1/rounds/{calibration.pk}/follow-up/", {"guidelines": "v2"}, format="json")
    assert response.status_code == 201 if allowed else response.status_code in (403, 404)
    response = client.post("/api/v1/rounds/create/", _round_payload(api_world), format="json")
    # Creating needs a managing role, and an SAE the creator may see (it is private to `own`).
    expected = {Role.COORDINATOR: 201 if where == "own" else 400, Role.ADMIN: 201}.get(role, 403)
    assert response.status_code == expected


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("role", ROLES)
def test_round_statistics_are_for_watchers_only(api_world, role, where):
    client = client_for(actor(api_world, role, where))
    round_id = api_world["revealed"].pk
    watcher = (role, where) in WATCHERS
    for part in ("progress", "agreement", "consensus", "reliability", "alpha-trend"):
        response = client.get(f"/api/v1/rounds/{round_id}/{part}/")
        assert (response.status_code == 200) == watcher, (part, response.status_code)
        assert response.status_code in (200, 403, 404)
    if watcher:
        reports = client.get(f"/api/v1/rounds/{round_id}/agreement/").json()["results"]
        assert any(r["metric"] == "krippendorff_alpha" and r["level"] == "nominal" for r in reports)
        progress = client.get(f"/api/v1/rounds/{round_id}/progress/").json()
        assert progress["done"] == progress["assigned"] > 0
        assert {row["name"] for row in progress["by_rater"]} == {r.profile.pseudonym for r in api_world["raters"]}
        assert "rater-own" not in str(progress)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("role", ROLES)
def test_revealed_distribution_and_discussion(api_world, role, where):
    user = actor(api_world, role, where)
    client = client_for(user)
    round_id = api_world["revealed"].pk
    rater = (role, where) == (Role.PHYSICIAN, "own")
    may_see = rater or (role, where) in WATCHERS
    response = client.get(f"/api/v1/rounds/{round_id}/distribution/")
    assert (response.status_code == 200) == may_see and response.status_code in (200, 403, 404)
    if may_see:
        body = response.json()
        assert len(body) == 4 and all(item["labels"] for item in body)
        assert not any("rater-own" in str(item) for item in body)
    latent = api_world["revealed"].latents.first()
    response = client.post(
        f"/api/v1/rounds/{round_id}/comments/create/", {"latent": latent.pk, "text": "<b>why</b>"}, format="json"
    )
    may_discuss = rater or (role, where) in MANAGERS
    assert (response.status_code == 201) == may_discuss and response.status_code in (201, 403, 404)
    if may_discuss:
        assert response.json()["author"] != user.username
        comments = client.get(f"/api/v1/rounds/{round_id}/comments/").json()["results"]
        assert comments[-1]["text"] == "<b>why</b>"
    assert Comment.objects.count() == int(may_discuss)


def test_distribution_is_hidden_before_reveal_even_from_the_rounds_raters(api_world):
    rater = client_for(api_world["raters"][0])
    set_status(api_world["revealed"], "closed")
    assert rater.get(f"/api/v1/rounds/{api_world['revealed'].pk}/distribution/").status_code == 403
    assert rater.get(f"/api/v1/rounds/{api_world['revealed'].pk}/comments/").status_code == 403
    coordinator = client_for(api_world["coordinator"])
    assert coordinator.get(f"/api/v1/rounds/{api_world['revealed'].pk}/distribution/").status_code == 200
    latent = api_world["revealed"].latents.first()
    response = coordinator.post(
        f"/api/v1/rounds/{api_world['revealed'].pk}/comments/create/", {"latent": latent.pk, "text": "x"}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("role", ROLES)
def test_rubrics_are_read_by_all_and_written_by_managers(api_world, role, where):
    client = client_for(actor(api_world, role, where))
    assert client.get("/api/v1/rubric-versions/").json()["count"] >= 1
    version = client.get(f"/api/v1/rubric-versions/{api_world['version'].pk}/").json()
    assert {"HF", "UNINTERPRETABLE", "POLYSEMANTIC", "ARTIFACT"} <= {c["code"] for c in version["concepts"]}
    may_write = role in (Role.COORDINATOR, Role.ADMIN)
    response = client.post(
        "/api/v1/rubrics/create/",
        {"name": f"r-{role}-{where}", "concepts": [{"code": "X", "name": "Something"}]},
        format="json",
    )
    assert response.status_code == (201 if may_write else 403)
    response = client.post(
        f"/api/v1/rubric-versions/{api_world['version'].pk}/derive/", {"guidelines": "g"}, format="json"
    )
    assert response.status_code == (201 if may_write else 403)
