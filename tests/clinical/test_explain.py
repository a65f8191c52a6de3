"""Explaining a note through the command, the API and the page, on a tiny host model: spans, labels and
uncertainty classes, nothing stored unless asked, every explanation audited, access per role and institution."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Role
from annotation.models import Adjudication, Assignment, Consensus, Round
from annotation.services import ConceptSpec, rubric_create
from clinical.models import SavedNote
from features.models import Latent
from tests import factories

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
    client.force_authenticate(people["researcher"])
    other_view = client.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").json()
    assert next(x for t in other_view["tokens"] for x in t["latents"] if x["index"] == chest)["label"] == "MI"


@pytest.mark.parametrize("status", ["open", "closed", "revealed"])
def test_explain_is_blind_to_physicians_and_seniors_until_the_round_is_revealed(tiny_world, people, client, status):
    """A physician or senior who is not a rater of the round sees no consensus of its latents before it is
    revealed (it showed the label, posterior and agreement of closed-unrevealed rounds); label readers do."""
    chest = _fired_by_token(_explain_json(tiny_world.sae))[2][0]
    version, _ = _label(
        tiny_world, people["coordinator"], plan={chest: {"code": "MI", "top": 0.9, "routing": "consensus"}}
    )
    latent = Latent.objects.get(sae=tiny_world.sae, index=chest)
    round_ = Round.objects.create(
        name="blind",
        kind="calibration",
        sae=tiny_world.sae,
        rubric_version=version,
        coordinator=people["coordinator"],
        status=status,
    )
    round_.latents.add(latent)
    rater = factories.user(role=Role.PHYSICIAN, institution_obj=tiny_world.home)
    Assignment.objects.create(round=round_, latent=latent, rater=rater, position=0)
    api = APIClient()
    for role in ("physician", "senior", "researcher", "coordinator"):
        api.force_authenticate(people[role])
        view = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").json()
        row = next(x for t in view["tokens"] for x in t["latents"] if x["index"] == chest)
        shown = row["label"] is not None or row["posterior"] is not None
        client.force_login(people[role])
        page = client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}).content.decode()
        blind = role in ("physician", "senior") and status != "revealed"
        assert shown is not blind, (role, status, row)
        assert ('data-codes="MI:' in page) is not blind, (role, status)


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


LONG_NOTE = " ".join((NOTE.split() * 20)[:200])  # 200 words: tiny BERT reads 64 positions at once


def test_a_note_longer_than_the_models_window_is_explained_in_windows_everywhere(tiny_world, people, client):
    """A 200-token note on a host model with 64 positions gave a 500 on the API; now it is cut into
    overlapping windows, says so, and every span still lines up with the text."""
    result = _explain_json(tiny_world.sae, LONG_NOTE)
    assert result["n_windows"] == 6 and result["window_tokens"] == 62 and result["stride"] == 31
    assert "split into 6 windows of 62 tokens" in result["notice"]
    assert [t["text"] for t in result["tokens"]] == LONG_NOTE.split()
    assert all(LONG_NOTE[t["start"] : t["end"]] == t["text"] for t in result["tokens"])
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(people["physician"])
    response = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": LONG_NOTE}, format="json")
    assert response.status_code == 200 and response.json()["n_windows"] == 6
    assert [t["start"] for t in response.json()["tokens"]] == [t["start"] for t in result["tokens"]]
    client.force_login(people["physician"])
    page = client.post("/explain/", {"sae": tiny_world.sae.pk, "text": LONG_NOTE})
    assert page.status_code == 200 and "split into 6 windows of 62 tokens" in page.content.decode()
    assert AuditEvent.objects.filter(action="note.explain", payload__n_windows=6).count() == 3


def test_a_note_over_the_configured_length_is_refused_in_plain_words(tiny_world, people, client, settings):
    from django.core.management.base import CommandError

    settings.CLINICAL_MAX_NOTE_CHARS = 50
    with pytest.raises(CommandError, match="at most 50"):
        _explain_json(tiny_world.sae, NOTE)
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(people["physician"])
    response = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json")
    assert response.status_code == 400 and "explain at most 50" in response.json()["detail"]
    client.force_login(people["physician"])
    page = client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE})
    assert page.status_code == 200 and "explain at most 50" in page.content.decode()
    assert not AuditEvent.objects.filter(action="note.explain").exists()


def test_a_model_that_fails_on_the_note_is_a_refusal_not_a_server_error(tiny_world, people, client, tmp_path):
    """An SAE whose width does not match its host model loads, then fails inside the model run: the
    API answers 400 and the page a message (was a 500)."""
    from features.models import SAE
    from inference.engine.formats import save_sae
    from inference.engine.saes import Normalisation, build_sae, config_from_dict

    wrong = build_sae(config_from_dict({"architecture": "topk", "d_in": 16, "d_sae": 32, "k": 4}), seed=0).eval()
    directory = save_sae(sae=wrong, normalisation=Normalisation.identity(16), directory=tmp_path / "wrong")
    sae = SAE.objects.create(
        name="wrong-width",
        hook_point=tiny_world.sae.hook_point,
        activation_set=tiny_world.sae.activation_set,
        architecture="topk",
        d_in=16,
        d_sae=32,
        k=4,
        artifact_uri=str(directory),
    )
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(people["physician"])
    response = api.post("/api/v1/explain/", {"sae": sae.pk, "text": NOTE, "flow": False}, format="json")
    assert response.status_code == 400 and "could not process this note" in response.json()["detail"]
    client.force_login(people["physician"])
    page = client.post("/explain/", {"sae": sae.pk, "text": NOTE, "only_this_layer": "on"})
    assert page.status_code == 200 and "could not process this note" in page.content.decode()


def _simulated_round(world, people, version, latent, *, n_raters=3):
    """A closed round marked simulated in which `n_raters` raters labelled `latent` MI."""
    from tests import factories

    round_ = Round.objects.create(
        name="simulated",
        kind="calibration",
        sae=world.sae,
        rubric_version=version,
        coordinator=people["coordinator"],
        status="revealed",
        simulated=True,
    )
    concept = version.concepts.get(code="MI")
    for position in range(n_raters):
        rater = factories.user(role="physician", institution_obj=world.home)
        assignment = Assignment.objects.create(round=round_, latent=latent, rater=rater, position=position)
        from annotation.models import Label

        Label.objects.create(
            assignment=assignment, concept=concept, confidence=4, rationale="A simulated rationale, long enough."
        )
    return round_


def test_the_summary_names_simulated_raters_and_quotes_whole_words(tiny_world, people):
    from clinical.services import _spans

    chest = _fired_by_token(_explain_json(tiny_world.sae))[2][0]
    version, _ = _label(tiny_world, people["coordinator"], plan={chest: {"code": "MI", "top": 0.82}})
    _simulated_round(tiny_world, people, version, Latent.objects.get(sae=tiny_world.sae, index=chest))
    result = _explain_json(tiny_world.sae)
    summary = next(c["summary"] for c in result["concepts"] if c["code"] == "MI")
    assert "consensus of 3 simulated raters (demo), 0.82" in summary and "physicians" not in summary
    row = next(x for t in result["tokens"] for x in t["latents"] if x["index"] == chest)
    assert (row["n_raters"], row["n_labels"], row["simulated"]) == (3, 5, "all")
    # A wordpiece tokenizer's fragments ('othyr', 'TS') are quoted as the words they belong to.
    text = "Hypothyroidism on levothyroxine; LFTS normal"
    pieces = [{"start": 0, "end": 4}, {"start": 4, "end": 9}, {"start": 9, "end": 14}, {"start": 33, "end": 35}]
    pieces += [{"start": 35, "end": 37}]
    quoted = [span for span, _, _ in _spans(text, pieces, {1: 0.9, 4: 0.5})]
    assert quoted == ["Hypothyroidism", "LFTS"]


def test_the_explanation_badges_a_concept_whose_latent_is_tied_to_a_protected_attribute(tiny_world, people, client):
    """A latent labelled Heart failure that the detector ties to sex/gender: the concept carries the badge,
    the page says which protected attributes the note represented; a rater who is labelling that latent
    in a blind round sees neither its label nor its association."""
    chest = _fired_by_token(_explain_json(tiny_world.sae))[2][0]
    latent = Latent.objects.get(sae=tiny_world.sae, index=chest)
    latent.protected_associations = [{"tag": "SEX_GENDER:female", "attribute": "SEX_GENDER", "r": 0.61}]
    latent.save()
    version, _ = _label(tiny_world, people["coordinator"], plan={chest: {"code": "HF", "top": 0.8}})
    result = _explain_json(tiny_world.sae)
    heart_failure = next(c for c in result["concepts"] if c["code"] == "HF")
    assert heart_failure["protected"] is True and heart_failure["protected_attributes"] == ["SEX_GENDER"]
    assert "tied to protected attributes (SEX_GENDER)" in heart_failure["summary"]
    assert result["protected_attributes"] == ["SEX_GENDER"]
    client.force_login(people["senior"])
    html = client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}).content.decode()
    assert "Protected attributes represented: SEX_GENDER" in html and "protected attribute: SEX_GENDER" in html
    blind = Round.objects.create(
        name="blind", kind="production", sae=tiny_world.sae, rubric_version=version,
        coordinator=people["coordinator"], status="open", blind=True,
    )  # fmt: skip
    Assignment.objects.create(round=blind, latent=latent, rater=people["physician"], position=0)
    api = APIClient()
    api.force_authenticate(people["physician"])
    body = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").json()
    row = next(x for t in body["tokens"] for x in t["latents"] if x["index"] == chest)
    assert (row["label"], row["protected"]) == (None, []) and body["protected_attributes"] == []


def test_the_api_gives_the_layer_flow_by_default(tiny_world, people):
    chest = _fired_by_token(_explain_json(tiny_world.sae))[2][0]
    _label(tiny_world, people["coordinator"], plan={chest: {"code": "MI", "top": 0.82}})
    api = APIClient()
    api.force_authenticate(people["physician"])
    body = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}, format="json").json()
    assert [(layer["layer"], layer["sae_id"]) for layer in body["layers"]] == [
        (0, tiny_world.shallow_sae.pk),
        (1, tiny_world.sae.pk),
    ]
    assert [c["code"] for c in body["layers"][1]["concepts"]] == ["MI"] and body["layers"][0]["concepts"] == []
    only = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE, "flow": False}, format="json")
    assert only.json()["layers"] == []
    assert AuditEvent.objects.filter(action="note.explain").first().payload["saes"] == [tiny_world.sae.pk]


def test_explaining_is_throttled_per_user_across_the_api_and_the_page(tiny_world, people, client, settings):
    settings.CLINICAL_EXPLAIN_RATE = "2/minute"
    api = APIClient()
    api.force_authenticate(people["physician"])
    payload = {"sae": tiny_world.sae.pk, "text": NOTE, "flow": False}
    assert [api.post("/api/v1/explain/", payload, format="json").status_code for _ in range(3)] == [200, 200, 429]
    client.force_login(people["physician"])
    page = client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE})
    assert page.status_code == 429 and "try again in" in page.content.decode()
    client.force_login(people["senior"])  # a budget of their own
    assert client.post("/explain/", {"sae": tiny_world.sae.pk, "text": NOTE}).status_code == 200
    assert AuditEvent.objects.filter(action="note.explain").count() == 3


def test_kept_notes_are_scrubbed_listed_and_deleted_by_their_owner_only(tiny_world, people, client, settings):
    from datetime import timedelta

    from django.utils import timezone

    note = NOTE + " seen 03/14/2026 , call 555-123-4567 , MRN 00123456"
    api = APIClient()
    api.force_authenticate(people["physician"])
    kept = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": note, "store": True}, format="json")
    saved = SavedNote.objects.get(pk=kept.json()["saved_note_id"])
    assert "03/14/2026" not in saved.text and "555-123-4567" not in saved.text and "00123456" not in saved.text
    assert "[DATE]" in saved.text and saved.sha256 == hashlib.sha256(note.encode()).hexdigest()
    listing = api.get("/api/v1/explain/saved/").json()
    assert [row["id"] for row in listing] == [saved.pk]
    other = APIClient()
    other.force_authenticate(people["senior"])
    assert other.get("/api/v1/explain/saved/").json() == []
    assert other.delete(f"/api/v1/explain/saved/{saved.pk}/").status_code == 404
    assert other.delete("/api/v1/explain/saved/999999/").status_code == 404
    client.force_login(people["senior"])
    assert client.post("/explain/saved/", {"delete": saved.pk}).status_code == 404
    assert SavedNote.objects.filter(pk=saved.pk).exists()
    client.force_login(people["physician"])
    page = client.get("/explain/saved/").content.decode()
    assert "[DATE]" in page and "deleted after 30 days" in page
    assert client.post("/explain/saved/", {"delete": saved.pk}).status_code == 302
    assert not SavedNote.objects.filter(pk=saved.pk).exists()
    assert AuditEvent.objects.filter(action="note.delete").count() == 1
    # Retention: a note older than CLINICAL_SAVED_NOTE_DAYS is purged when notes are listed.
    old = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE, "store": True}, format="json")
    SavedNote.objects.filter(pk=old.json()["saved_note_id"]).update(created_at=timezone.now() - timedelta(days=31))
    assert api.get("/api/v1/explain/saved/").json() == [] and not SavedNote.objects.exists()
    old = api.post("/api/v1/explain/", {"sae": tiny_world.sae.pk, "text": NOTE, "store": True}, format="json")
    SavedNote.objects.filter(pk=old.json()["saved_note_id"]).update(created_at=timezone.now() - timedelta(days=31))
    _explain_json(tiny_world.sae)  # any explanation, by anyone, purges too
    assert not SavedNote.objects.exists()
