"""The round lifecycle services: transitions, labels (immutability, idempotency, history), follow-up,
discussion, detection rounds and adjudication; each writes an audit event."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from accounts.models import AuditEvent, Role
from annotation import services
from annotation.models import (
    Adjudication,
    AgreementReport,
    Assignment,
    Consensus,
    DetectionItem,
    Label,
    LabelRevision,
    Round,
)
from annotation.services import InvalidInput, RoundStateError
from features.models import Latent
from tests import factories
from tests.annotation import worlds

pytestmark = pytest.mark.django_db
RATIONALE = "Fires on the word failure after heart in every top snippet."


@pytest.fixture
def world(postgres):
    coordinator = worlds.coordinator()
    people = worlds.raters(per_institution={"a": 2, "b": 2})
    sae = worlds.sae_with_examples(n_latents=4)
    version = worlds.rubric(by=coordinator)
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=version,
        raters_list=people,
        overlap=2,
        institutions=list({p.profile.institution for p in people}),
        open_it=False,
    )
    return {"coordinator": coordinator, "people": people, "sae": sae, "version": version, "round": round_}


def _first_assignment(round_):
    return Assignment.objects.filter(round=round_, is_repeat=False).select_related("rater", "round").first()


def _submit(assignment, **overrides):
    arguments = {
        "assignment": assignment,
        "concept_code": "HF",
        "confidence": 4,
        "rationale": RATIONALE,
        "by": assignment.rater,
        **overrides,
    }
    return services.label_submit(**arguments)


def test_transitions_follow_draft_open_closed_revealed(world):
    round_, coordinator = world["round"], world["coordinator"]
    assert round_.status == Round.Status.DRAFT
    services.round_open(round=round_, by=coordinator)
    worlds.close_round(round=round_, by=coordinator)
    services.round_reveal(round=round_, by=coordinator)
    round_.refresh_from_db()
    assert round_.status == Round.Status.REVEALED and round_.opened_at and round_.closed_at
    actions = list(
        AuditEvent.objects.filter(object_id=str(round_.pk), object_type="annotation.Round")
        .order_by("created_at", "id")
        .values_list("action", flat=True)
    )
    # The world's raters come from several institutions: each foreign one enlisted is audited after the create.
    lifecycle = [action for action in actions if action != "round.enlist_foreign"]
    assert actions[0] == "round.create" and actions.count("round.enlist_foreign") >= 1
    assert lifecycle[:5] == [
        "round.create",
        "round.open",
        "round.close",
        "round.statistics.request",
        "round.statistics",
    ]
    assert lifecycle[-1] == "round.reveal"


@pytest.mark.parametrize(
    ("steps", "action", "message"),
    [
        ([], services.round_close, "Only an open round can be closed"),
        ([], services.round_reveal, "Only a closed round can be revealed"),
        (["open"], services.round_open, "Only a draft round can be opened"),
        (["open"], services.round_reveal, "Only a closed round"),
        (["open", "close"], services.round_close, "is closed"),
        (["open", "close"], services.round_open, "is closed"),
    ],
)
def test_illegal_transitions_are_refused(world, steps, action, message):
    round_, coordinator = world["round"], world["coordinator"]
    for step in steps:
        getattr(services, f"round_{step}")(round=round_, by=coordinator)
    with pytest.raises(RoundStateError, match=message):
        action(round=round_, by=coordinator)


def test_production_rounds_are_never_revealed(world):
    round_ = worlds.make_round(
        by=world["coordinator"],
        sae=world["sae"],
        version=world["version"],
        kind="production",
        raters_list=world["people"],
        overlap=2,
        institutions=list(world["round"].institutions.all()),
    )
    worlds.close_round(round=round_, by=world["coordinator"])
    with pytest.raises(RoundStateError, match="Only calibration rounds are revealed"):
        services.round_reveal(round=round_, by=world["coordinator"])


def test_labelling_needs_an_open_round_and_labels_freeze_at_close(world):
    round_, coordinator = world["round"], world["coordinator"]
    assignment = _first_assignment(round_)
    with pytest.raises(RoundStateError, match="draft"):
        _submit(assignment)
    services.round_open(round=round_, by=coordinator)
    label = _submit(assignment).label
    worlds.close_round(round=round_, by=coordinator)
    with pytest.raises(RoundStateError, match="immutable"):
        _submit(assignment, concept_code="AF")
    label.refresh_from_db()
    assert label.concept.code == "HF" and not LabelRevision.objects.exists()


def test_edits_before_close_keep_history(world):
    services.round_open(round=world["round"], by=world["coordinator"])
    assignment = _first_assignment(world["round"])
    first = _submit(assignment, idempotency_key="k1")
    assert first.created
    second = _submit(assignment, concept_code="AF", confidence=2, idempotency_key="k2")
    assert not second.created and not second.replayed
    label = Label.objects.get(assignment=assignment)
    assert label.concept.code == "AF" and label.confidence == 2
    revision = LabelRevision.objects.get(label=label)
    assert (revision.concept_code, revision.confidence, revision.idempotency_key) == ("HF", 4, "k1")
    assert AuditEvent.objects.filter(action="label.edit").count() == 1


def test_idempotency_key_makes_retries_harmless(world):
    services.round_open(round=world["round"], by=world["coordinator"])
    assignment = _first_assignment(world["round"])
    first = _submit(assignment, idempotency_key="same-key")
    retry = _submit(assignment, idempotency_key="same-key")
    assert retry.replayed and retry.label.pk == first.label.pk
    assert Label.objects.count() == 1
    _submit(assignment, concept_code="AF", idempotency_key="edit-key")
    late_retry_of_first = _submit(assignment, idempotency_key="same-key")
    assert late_retry_of_first.replayed
    assert Label.objects.get().concept.code == "AF"  # the late retry did not undo the edit
    other = Assignment.objects.filter(round=world["round"]).exclude(rater=assignment.rater).first()
    with pytest.raises(InvalidInput, match="already used"):
        _submit(other, idempotency_key="same-key")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"concept_code": "NOPE"}, "not a concept"),
        ({"confidence": 6}, "1 to 5"),
        ({"rationale": "too short"}, "at least 20"),
        ({"free_text": "x" * 301}, "at most 300"),
        ({"time_spent_seconds": -1}, "non-negative"),
    ],
)
def test_label_input_is_validated(world, overrides, message):
    services.round_open(round=world["round"], by=world["coordinator"])
    with pytest.raises(InvalidInput, match=message):
        _submit(_first_assignment(world["round"]), **overrides)


def test_only_the_assigned_rater_may_label(world):
    services.round_open(round=world["round"], by=world["coordinator"])
    assignment = _first_assignment(world["round"])
    stranger = next(p for p in world["people"] if p.pk != assignment.rater_id)
    with pytest.raises(PermissionDenied):
        _submit(assignment, by=stranger)


def test_follow_up_creates_a_rubric_version_and_a_round_on_the_same_latents(world):
    round_, coordinator = world["round"], world["coordinator"]
    services.round_open(round=round_, by=coordinator)
    with pytest.raises(RoundStateError, match="closed first"):
        services.round_follow_up_create(parent=round_, guidelines="new", by=coordinator)
    worlds.close_round(round=round_, by=coordinator)
    follow_up = services.round_follow_up_create(
        parent=round_, guidelines="Say what fires, not the diagnosis.", by=coordinator
    )
    assert follow_up.parent == round_ and follow_up.status == Round.Status.DRAFT
    assert follow_up.rubric_version.version == 2 and follow_up.rubric_version.parent == round_.rubric_version
    assert set(follow_up.latents.values_list("pk", flat=True)) == set(round_.latents.values_list("pk", flat=True))
    raters = set(Assignment.objects.filter(round=round_).values_list("rater", flat=True))
    assert set(Assignment.objects.filter(round=follow_up).values_list("rater", flat=True)) == raters
    assert set(follow_up.rubric_version.concepts.values_list("code", flat=True)) == set(
        round_.rubric_version.concepts.values_list("code", flat=True)
    )


def test_comments_open_with_the_reveal(world):
    round_, coordinator = world["round"], world["coordinator"]
    latent = round_.latents.first()
    services.round_open(round=round_, by=coordinator)
    worlds.close_round(round=round_, by=coordinator)
    with pytest.raises(RoundStateError, match="revealed"):
        services.comment_create(round=round_, latent=latent, text="why?", by=coordinator)
    services.round_reveal(round=round_, by=coordinator)
    comment = services.comment_create(round=round_, latent=latent, text="  I read it as negation.  ", by=coordinator)
    assert comment.text == "I read it as negation."
    with pytest.raises(InvalidInput):
        services.comment_create(round=round_, latent=latent, text="   ", by=coordinator)


def _consensus_latents(world, n_rounds: int = 1, split: bool = False):
    """Close `n_rounds` rounds where everyone labels latents 0–1 HF and latents 2–3 split AKI/RENAL if asked."""
    coordinator = world["coordinator"]
    rounds = [world["round"]]
    services.round_open(round=world["round"], by=coordinator)
    for _ in range(n_rounds - 1):
        rounds.append(
            worlds.make_round(
                by=coordinator,
                sae=world["sae"],
                version=world["version"],
                kind="production",
                raters_list=world["people"],
                overlap=2,
                institutions=list(world["round"].institutions.all()),
            )
        )
    for round_ in rounds:
        # A split latent's first rater (lowest id) says AKI, its other rater RENAL: every split latent is split.
        first_rater = {}
        for latent_id, rater_id in (
            Assignment.objects.filter(round=round_).order_by("-rater_id").values_list("latent_id", "rater_id")
        ):
            first_rater[latent_id] = rater_id
        worlds.label_everything(
            round_,
            choose=lambda a: (
                "HF"
                if a.latent.index < 2 or not split
                else ("AKI" if first_rater[a.latent_id] == a.rater_id else "RENAL")
            ),
        )
        worlds.close_round(round=round_, by=coordinator)


def test_detection_round_measures_accuracy_and_validates_labels(world):
    _consensus_latents(world)
    coordinator = world["coordinator"]
    assert Latent.objects.filter(sae=world["sae"], status=Latent.Status.CONSENSUS).count() == 4
    detection = worlds.make_round(
        by=coordinator,
        sae=world["sae"],
        version=world["version"],
        kind="detection",
        raters_list=world["people"],
        overlap=2,
        rule="random",
        n_latents=2,
        institutions=list(world["round"].institutions.all()),
    )
    items = DetectionItem.objects.filter(round=detection)
    for latent_id in items.values_list("latent_id", flat=True).distinct():
        mine = items.filter(latent_id=latent_id)
        assert mine.filter(is_activating=True).count() == mine.filter(is_activating=False).count() > 0
        assert set(mine.values_list("concept_code", flat=True)) == {"HF"}
    assignments = Assignment.objects.filter(round=detection).select_related("round").order_by("latent", "rater")
    first_rater = {}
    for assignment in assignments:
        first_rater.setdefault(assignment.latent_id, assignment.rater_id)
    for assignment in assignments:
        answers = {item.pk: item.is_activating for item in items.filter(latent_id=assignment.latent_id)}
        if first_rater[assignment.latent_id] == assignment.rater_id:  # one rater per latent misses one snippet
            first_activating = next(pk for pk, active in answers.items() if active)
            answers[first_activating] = False
        services.detection_response_submit(assignment=assignment, answers=answers, by=assignment.rater)
    with pytest.raises(RoundStateError, match="match answers, not labels"):
        _submit(Assignment.objects.filter(round=detection).first())
    worlds.close_round(round=detection, by=coordinator)
    accuracies = Consensus.objects.filter(detection_round=detection)
    assert accuracies.count() == 2
    for row in accuracies:
        assert 0.7 <= row.detection_accuracy < 1 and row.validated
    report = AgreementReport.objects.get(round=detection, metric="detection_accuracy")
    assert report.n_units == 2 and report.parameters["validated"] == 2


def test_detection_answers_must_cover_every_snippet(world):
    _consensus_latents(world)
    detection = worlds.make_round(
        by=world["coordinator"],
        sae=world["sae"],
        version=world["version"],
        kind="detection",
        raters_list=world["people"],
        overlap=1,
        rule="hand",
        institutions=list(world["round"].institutions.all()),
    )
    assignment = Assignment.objects.filter(round=detection).select_related("round").first()
    item = DetectionItem.objects.filter(round=detection, latent_id=assignment.latent_id).first()
    with pytest.raises(InvalidInput, match="answer every snippet"):
        services.detection_response_submit(assignment=assignment, answers={item.pk: True}, by=assignment.rater)


def test_adjudication_records_a_decision_beside_the_distribution(world):
    _consensus_latents(world, n_rounds=2, split=True)
    ambiguous = Latent.objects.filter(sae=world["sae"], status=Latent.Status.AMBIGUOUS).first()
    assert ambiguous is not None
    senior = factories.user(role=Role.SENIOR, institution_obj=world["people"][0].profile.institution)
    consensus_before = Consensus.objects.of_sae(world["sae"].pk).platform().get(latent=ambiguous)
    concept = world["version"].concepts.get(code="AKI")
    with pytest.raises(InvalidInput, match="at least 20"):
        services.adjudication_record(latent=ambiguous, concept=concept, rationale="short", by=senior)
    adjudication = services.adjudication_record(latent=ambiguous, concept=concept, rationale=RATIONALE, by=senior)
    ambiguous.refresh_from_db()
    assert ambiguous.status == Latent.Status.ADJUDICATED
    assert adjudication.overrode == consensus_before
    assert Consensus.objects.get(pk=consensus_before.pk).posterior == consensus_before.posterior
    assert Label.objects.filter(assignment__latent=ambiguous).count() > 0
    with pytest.raises(RoundStateError, match="Only ambiguous latents"):
        services.adjudication_record(latent=ambiguous, concept=concept, rationale=RATIONALE, by=senior)
    # A later recomputation keeps the decision.
    services.sae_consensus_compute(sae=world["sae"])
    ambiguous.refresh_from_db()
    assert ambiguous.status == Latent.Status.ADJUDICATED and Adjudication.objects.count() == 1
