"""Explaining a note through the command, the API and the page, on a tiny host model: spans, labels and
uncertainty classes, nothing stored unless asked, every explanation audited, access per role and institution."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from annotation.models import Adjudication, Assignment, Consensus, Round
from annotation.services import ConceptSpec, rubric_create
from clinical.models import SavedNote
from features.models import Latent

pytestmark = pytest.mark.django_db

NOTE = "patient reports chest pain radiating to the left arm with diaphoresis and nausea"
LATENT_KEYS = {"latent_id", "index", "activation", "label", "posterior", "uncertainty"}


def _explain_json(sae, text=NOTE) -> dict:
    out = io.StringIO()
    call_command("explain_note", "--sae", str(sae.pk), "--text", text, "--json", stdout=out)
    return json.loads(out.getvalue())


def _label(world, coordinator, *, plan: dict[int, dict]):
    """Consensus rows for chosen latents of world.sae, and a closed round naming the rubric's concepts."""
    version = rubric_create(
        name=f"rubric-{world.sae.pk}",
        by=coordinator,
        concepts=[
            ConceptSpec(code="CARDIO", name="Cardiovascular"),
            ConceptSpec(code="MI", name="Myocardial infarction", parent_code="CARDIO"),
            ConceptSpec(code="HF", name="Heart failure", parent_code="CARDIO"),
            ConceptSpec(code="SEX_GENDER", name="Sex/gender", protected=True),
        ],
    )
    round_ = Round.objects.create(
        name="r", kind="production", sae=world.sae, rubric_version=version, coordinator=coordinator, status="closed"
    )
    for index, fields in plan.items():
        latent = Latent.objects.get(sae=world.sae, index=index)
        code = fields.pop("code")
        top = fields.pop("top")
        Consensus.objects.create(
            latent=latent,
            sae=world.sae,
            method="bayesian-ds",
            posterior={code: top, "HF" if code != "HF" else "MI": round(1 - top, 4)},
            map_concept=code,
            entropy=fields.pop("entropy", 0.2),
            n_labels=fields.pop("n_labels", 5),  # three raters, two hidden repeats
            n_raters=fields.pop("n_raters", 3),
            **fields,
        )
    return version, round_


def _fired_by_token(result) -> list[list[int]]:
    return [[latent["index"] for latent in token["latents"]] for token in result["tokens"]]


def test_command_prints_the_design_shape_with_spans_labels_and_classes(tiny_world, people):
    first = _explain_json(tiny_world.sae)
    assert {"tokens", "concepts", "summary", "disclaimer", "n_windows", "notice"} <= set(first)
    assert first["n_windows"] == 1 and first["notice"] is None and first["disclaimer"].startswith("This is an audit")
    assert [token["text"] for token in first["tokens"]] == NOTE.split()
    assert all(NOTE[t["start"] : t["end"]] == t["text"] for t in first["tokens"])
    assert all(LATENT_KEYS <= set(latent) for t in first["tokens"] for latent in t["latents"])
    assert all(
        latent["uncertainty"] == "unlabelled" and latent["label"] is None
        for t in first["tokens"]
        for latent in t["latents"]
    )
    assert first["concepts"] == []
    fired = _fired_by_token(first)
    chest, arm = fired[2][0], fired[8][0]  # strongest latents on "chest" and on "arm"
    others = [i for i in fired[3] if i not in (chest, arm)]
    validated, ambiguous = others[0], others[1]
    _label(
        tiny_world,
        people["coordinator"],
        plan={
            chest: {"code": "MI", "top": 0.82, "routing": "consensus", "agreement": 0.67},
            arm: {"code": "SEX_GENDER", "top": 0.9, "routing": "consensus"},
            validated: {"code": "HF", "top": 0.7, "routing": "consensus", "detection_accuracy": 0.8},
            ambiguous: {"code": "HF", "top": 0.45, "entropy": 0.9, "routing": "another_round"},
        },
    )
    result = _explain_json(tiny_world.sae)
    by_index = {latent["index"]: latent for t in result["tokens"] for latent in t["latents"]}
    assert by_index[chest]["label"] == "MI" and by_index[chest]["uncertainty"] == "consensus"
    assert by_index[chest]["posterior"] == pytest.approx(0.82)
    assert by_index[chest]["latent_id"] == Latent.objects.get(sae=tiny_world.sae, index=chest).pk
    assert by_index[chest]["agreement"] == pytest.approx(0.67) and by_index[chest]["detection_accuracy"] is None
    assert by_index[validated]["uncertainty"] == "validated"
    assert by_index[validated]["detection_accuracy"] == pytest.approx(0.8)
    assert by_index[ambiguous]["uncertainty"] == "ambiguous"
    concepts = {concept["code"]: concept for concept in result["concepts"]}
    assert set(concepts) == {"MI", "HF", "SEX_GENDER"}
    assert all({"code", "name", "score", "uncertainty", "tokens"} <= set(concept) for concept in concepts.values())
    assert result["summary"] == [concept["summary"] for concept in result["concepts"]]
    assert "Myocardial infarction" in result["summary"][[c["code"] for c in result["concepts"]].index("MI")]
    assert concepts["MI"]["name"] == "Myocardial infarction" and "chest" in " ".join(concepts["MI"]["tokens"])
    assert concepts["MI"]["uncertainty"] == "consensus"
    assert [c["score"] for c in result["concepts"]] == sorted((c["score"] for c in result["concepts"]), reverse=True)
    assert SavedNote.objects.count() == 0
    event = AuditEvent.objects.filter(action="note.explain").first()
    assert event.payload["sha256"] == hashlib.sha256(NOTE.encode()).hexdigest()
    assert NOTE not in json.dumps(event.payload) and event.object_id == str(tiny_world.sae.pk)


def test_an_adjudicated_latent_carries_the_seniors_concept(tiny_world, people):
    chest = _fired_by_token(_explain_json(tiny_world.sae))[2][0]
    version, _ = _label(
        tiny_world,
        people["coordinator"],
        plan={chest: {"code": "HF", "top": 0.5, "entropy": 0.95, "routing": "adjudicate"}},
    )
    latent = Latent.objects.get(sae=tiny_world.sae, index=chest)
    Adjudication.objects.create(
        latent=latent,
        senior=people["senior"],
        concept=version.concepts.get(code="MI"),
        rationale="Fires on chest pain radiating to the arm: infarction.",
    )
    result = _explain_json(tiny_world.sae)
    latent_row = next(x for t in result["tokens"] for x in t["latents"] if x["index"] == chest)
    assert (latent_row["label"], latent_row["uncertainty"]) == ("MI", "consensus")


def test_api_explains_for_every_role_of_the_institution_and_hides_a_private_sae_from_others(tiny_world, people):
    client = APIClient()
    for role in ("physician", "senior", "researcher", "coordinator"):
        client.force_authenticate(people[role])
        response = client.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json")
        assert response.status_code == 200, role
        assert response.json()["disclaimer"].startswith("This is an audit")
    for role in ("foreign_physician", "foreign_researcher"):
        client.force_authenticate(people[role])
        response = client.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json")
        assert response.status_code == 404, role
    client.force_authenticate(None)
    assert client.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").status_code in (
        401,
        403,
    )
    assert AuditEvent.objects.filter(action="note.explain").count() == 4
    assert SavedNote.objects.count() == 0


def test_a_note_is_kept_only_when_asked(tiny_world, people):
    client = APIClient()
    client.force_authenticate(people["physician"])
    response = client.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE, "store": True}, format="json")
    saved = SavedNote.objects.get()
    assert response.json()["saved_note_id"] == saved.pk and saved.text == NOTE and saved.owner == people["physician"]
    assert AuditEvent.objects.get(action="note.explain").payload["stored"] is True


def test_a_rater_does_not_see_the_consensus_of_a_latent_they_are_rating(tiny_world, people):
    chest = _fired_by_token(_explain_json(tiny_world.sae))[2][0]
    version, _ = _label(
        tiny_world, people["coordinator"], plan={chest: {"code": "MI", "top": 0.9, "routing": "consensus"}}
    )
    open_round = Round.objects.create(
        name="open",
        kind="production",
        sae=tiny_world.sae,
        rubric_version=version,
        coordinator=people["coordinator"],
        status="open",
    )
    latent = Latent.objects.get(sae=tiny_world.sae, index=chest)
    Assignment.objects.create(round=open_round, latent=latent, rater=people["physician"], position=0)
    client = APIClient()
    client.force_authenticate(people["physician"])
    rater_view = client.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").json()
    row = next(x for t in rater_view["tokens"] for x in t["latents"] if x["index"] == chest)
    assert (row["label"], row["uncertainty"]) == (None, "unlabelled") and rater_view["n_withheld"] == 1
    client.force_authenticate(people["senior"])
    other_view = client.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").json()
    assert next(x for t in other_view["tokens"] for x in t["latents"] if x["index"] == chest)["label"] == "MI"


def test_page_shades_the_note_says_it_is_an_audit_and_shows_the_layer_flow(tiny_world, people, client):
    chest = _fired_by_token(_explain_json(tiny_world.sae))[2][0]
    _label(tiny_world, people["coordinator"], plan={chest: {"code": "MI", "top": 0.82, "routing": "consensus"}})
    client.force_login(people["physician"])
    page = client.get("/explain/")
    assert page.status_code == 200 and "not a clinical finding" in page.content.decode()
    response = client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE + " <script>x</script>"})
    html = response.content.decode()
    assert response.status_code == 200
    # five judgments (hidden repeats included) by three physicians: the summary counts people
    assert "represented Myocardial infarction on" in html and "consensus of 3 physicians, 0.82" in html
    assert 'data-codes="MI:' in html and "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x</script>" not in html
    # two SAEs on one host model at different layers: the flow is shown without asking
    assert "Layer by layer" in html and "Layer 0" in html and "Layer 1" in html
    opted_out = client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE, "only_this_layer": "on"})
    assert "represented Myocardial infarction" in opted_out.content.decode()
    assert "Layer by layer" not in opted_out.content.decode()
    client.force_login(people["foreign_physician"])
    assert client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}).status_code == 404
    assert str(tiny_world.sae.name) not in client.get("/explain/").content.decode()


def test_command_refuses_an_unknown_sae_and_an_empty_note(tiny_world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("explain_note", "--sae", "999999", "--text", NOTE, "--json", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("explain_note", "--sae", str(tiny_world.sae.pk), "--text", "  ", "--json", stdout=io.StringIO())
