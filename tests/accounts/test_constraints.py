"""The data model's rules are enforced by PostgreSQL itself, not only by forms."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, transaction

from accounts.models import AuditEvent
from annotation.models import Assignment, Concept, Label, Round, Rubric, RubricVersion
from features.models import Latent, Snippet
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(postgres):
    sae = factories.sae()
    coordinator = factories.user(role="coordinator")
    rater = factories.user()
    version = RubricVersion.objects.create(rubric=Rubric.objects.create(name="r"), version=1)
    concept = Concept.objects.create(rubric_version=version, code="HF", name="Heart failure")
    round_ = Round.objects.create(
        name="c1", kind="calibration", sae=sae, rubric_version=version, coordinator=coordinator
    )
    latent = sae.latents.first()
    assignment = Assignment.objects.create(round=round_, latent=latent, rater=rater, position=0)
    return {"sae": sae, "round": round_, "latent": latent, "rater": rater, "assignment": assignment, "concept": concept}


def _label(assignment, concept, **overrides):
    fields = {
        "assignment": assignment,
        "concept": concept,
        "confidence": 3,
        "rationale": "Fires on furosemide and raised BNP in every example.",
    }
    fields.update(overrides)
    return Label.objects.create(**fields)


def test_label_unique_per_assignment(labelled):
    _label(labelled["assignment"], labelled["concept"])
    with pytest.raises(IntegrityError), transaction.atomic():
        _label(labelled["assignment"], labelled["concept"])


@pytest.mark.parametrize("confidence", [0, 6])
def test_label_confidence_outside_1_5_refused(labelled, confidence):
    with pytest.raises(IntegrityError), transaction.atomic():
        _label(labelled["assignment"], labelled["concept"], confidence=confidence)


def test_label_empty_rationale_refused(labelled):
    with pytest.raises(IntegrityError), transaction.atomic():
        _label(labelled["assignment"], labelled["concept"], rationale="")


def test_latent_index_unique_per_sae(labelled):
    with pytest.raises(IntegrityError), transaction.atomic():
        Latent.objects.create(sae=labelled["sae"], index=0)


def test_latent_index_may_repeat_across_saes(labelled):
    other = factories.sae(n_latents=1)
    assert other.latents.get().index == 0


def test_snippet_external_id_unique_per_corpus(postgres):
    corpus = factories.corpus(n_snippets=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Snippet.objects.create(corpus=corpus, external_id="s0", text="again")
    Snippet.objects.create(corpus=factories.corpus(n_snippets=0), external_id="s0", text="other corpus is fine")


def test_assignment_unique_per_round_latent_rater_repeat(labelled):
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            round=labelled["round"], latent=labelled["latent"], rater=labelled["rater"], position=5
        )
    repeat = Assignment.objects.create(
        round=labelled["round"],
        latent=labelled["latent"],
        rater=labelled["rater"],
        position=6,
        is_repeat=True,
        repeat_of=labelled["assignment"],
    )
    assert repeat.pk


def test_repeat_without_original_refused(labelled):
    other = labelled["sae"].latents.last()
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            round=labelled["round"], latent=other, rater=labelled["rater"], position=7, is_repeat=True
        )


def test_round_overlap_must_be_positive(labelled):
    with pytest.raises(IntegrityError), transaction.atomic():
        Round.objects.filter(pk=labelled["round"].pk).update(overlap=0)


def test_audit_event_refuses_update_and_delete_in_orm(postgres):
    event = AuditEvent.objects.create(action="test.event")
    event.action = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


def test_audit_event_refuses_update_and_delete_in_database(postgres):
    AuditEvent.objects.create(action="test.event")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), postgres.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditevent SET action = 'tampered'")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), postgres.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_auditevent")
