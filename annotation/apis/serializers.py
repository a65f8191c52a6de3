"""Input and output shapes of the annotation API. Output never names a rater: pseudonyms only."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.permissions import UserScopedSlugField
from features.access import institutions_readable

from .. import access
from ..models import (
    RATIONALE_MIN_LENGTH,
    Adjudication,
    AgreementReport,
    Assignment,
    Comment,
    Concept,
    Consensus,
    DetectionItem,
    Label,
    RaterReliability,
    Round,
    RubricVersion,
)
from ..services import SELECTION_RULES
from ..services.rubrics import ConceptSpec


class RoundStatisticsStateSerializer(serializers.Serializer):
    round = serializers.IntegerField(allow_null=True, help_text="null: a round you may not read")
    name = serializers.CharField()
    status = serializers.CharField(help_text="queued, running or failed")
    progress = serializers.FloatField()
    message = serializers.CharField()


class StatisticsStateSerializer(serializers.Serializer):
    """Whether the statistics an answer shows are ready (annotation/selectors/statistics.py): `done`, still
    computing (`queued`, `running`), `failed`, or `none` (no closed round behind it: no data)."""

    status = serializers.CharField(help_text="none, queued, running, done or failed")
    pending = serializers.BooleanField()
    progress = serializers.FloatField()
    message = serializers.CharField()
    updated_at = serializers.DateTimeField(allow_null=True)
    rounds = RoundStatisticsStateSerializer(many=True, help_text="the rounds behind it that are not done")


class StatisticsConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    statistics = StatisticsStateSerializer()


class RoundSerializer(serializers.ModelSerializer):
    institutions = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    statistics_message = serializers.SerializerMethodField()

    class Meta:
        model = Round
        fields = [
            "id",
            "name",
            "kind",
            "sae",
            "rubric_version",
            "institutions",
            "overlap",
            "repeat_fraction",
            "min_repeats",
            "routing_min_rounds",
            "routing_entropy_ceiling",
            "routing_top_posterior_floor",
            "simulated",
            "blind",
            "status",
            "deadline",
            "parent",
            "selection_rule",
            "created_at",
            "opened_at",
            "closed_at",
            "statistics_status",
            "statistics_progress",
            "statistics_message",
            "statistics_updated_at",
        ]
        read_only_fields = ["statistics_status", "statistics_progress", "statistics_message", "statistics_updated_at"]

    def get_statistics_message(self, round_) -> str:
        """The job's message (α once done) only for those who may read the round's content: a rater of a
        closed, unrevealed round sees the status and progress, not the agreement."""
        request = self.context.get("request")
        if request is None:  # a transition's answer: its caller manages the round
            return round_.statistics_message
        if "statistics_readable" not in self.context:
            self.context["statistics_readable"] = set(
                access.rounds_watchable(request.user)
                .filter(status__in=access.CONTENT_STATUSES)
                .values_list("pk", flat=True)
            )
        return round_.statistics_message if round_.pk in self.context["statistics_readable"] else ""


class AssignmentSerializer(serializers.ModelSerializer):
    """Hidden repeats look like any other item: is_repeat and repeat_of are never shown to raters, and
    neither is the latent (a repeated latent id would give the repeat away)."""

    has_label = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "round", "position", "has_label"]

    def get_has_label(self, assignment) -> bool:
        return hasattr(assignment, "label")


class ConceptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Concept
        fields = ["code", "name", "description", "parent_code", "synonyms", "protected"]


class RubricVersionSerializer(serializers.ModelSerializer):
    rubric = serializers.CharField(source="rubric.name", read_only=True)
    concepts = ConceptSerializer(many=True, read_only=True)

    class Meta:
        model = RubricVersion
        fields = ["id", "rubric", "version", "guidelines", "parent", "created_at", "concepts"]


class ConceptInputSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=200)
    parent_code = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    description = serializers.CharField(
        max_length=settings.MAX_TEXT_CHARS, required=False, allow_blank=True, default=""
    )
    synonyms = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list)
    protected = serializers.BooleanField(required=False, default=False)

    @staticmethod
    def specs(items) -> list[ConceptSpec]:
        return [
            ConceptSpec(
                code=i["code"],
                name=i["name"],
                parent_code=i["parent_code"],
                description=i["description"],
                synonyms=tuple(i["synonyms"]),
                protected=i["protected"],
            )
            for i in items
        ]


class RubricCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=settings.MAX_TEXT_CHARS, required=False, allow_blank=True, default=""
    )
    guidelines = serializers.CharField(
        max_length=settings.MAX_GUIDELINES_CHARS, required=False, allow_blank=True, default=""
    )
    concepts = ConceptInputSerializer(many=True)


class RubricVersionCreateInputSerializer(serializers.Serializer):
    guidelines = serializers.CharField(max_length=settings.MAX_GUIDELINES_CHARS, allow_blank=True)
    concepts = ConceptInputSerializer(many=True, required=False, help_text="Omit to keep the parent's concepts.")


@extend_schema_field({"type": "string", "enum": list(Round.Kind.values)})
class RoundKindField(serializers.ChoiceField):
    """Round.Kind as input; documented inline so that the Round component keeps its own enum name."""

    def __init__(self, **kwargs):
        super().__init__(choices=Round.Kind.choices, **kwargs)


class RoundCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = RoundKindField()
    sae = serializers.IntegerField()
    rubric_version = serializers.IntegerField()
    institutions = UserScopedSlugField(scope=institutions_readable, slug_field="code", many=True)
    overlap = serializers.IntegerField(min_value=1, default=3)
    repeat_fraction = serializers.FloatField(min_value=0, max_value=1, default=0.0)
    min_repeats = serializers.IntegerField(
        min_value=0, max_value=100, default=3, help_text="Hidden repeats every rater gets at least (test–retest)"
    )
    routing_min_rounds = serializers.IntegerField(
        min_value=1, max_value=20, default=2, help_text="R: rounds with labels before a senior decides"
    )
    routing_entropy_ceiling = serializers.FloatField(
        min_value=0, max_value=1, default=0.5, help_text="τ: a normalised entropy above it is ambiguous"
    )
    routing_top_posterior_floor = serializers.FloatField(
        min_value=0, max_value=1, default=0.6, help_text="A top posterior below it is ambiguous"
    )
    blind = serializers.BooleanField(default=True)
    selection_rule = serializers.ChoiceField(choices=list(SELECTION_RULES.items()))
    n_latents = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    latent_indices = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False, default=list)
    raters = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Rater pseudonyms; omit for every physician and senior of the institutions.",
    )
    deadline = serializers.DateTimeField(required=False, allow_null=True, default=None)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None)
    detection_per_side = serializers.IntegerField(min_value=1, max_value=50, default=5)


class RoundFollowUpInputSerializer(serializers.Serializer):
    guidelines = serializers.CharField(max_length=settings.MAX_GUIDELINES_CHARS, allow_blank=True)
    concepts = ConceptInputSerializer(many=True, required=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    deadline = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ProgressRowSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Institution code or rater pseudonym")
    detail = serializers.CharField(help_text="Institution name, or the rater's institution code")
    assigned = serializers.IntegerField()
    done = serializers.IntegerField()


class RoundProgressSerializer(serializers.Serializer):
    assigned = serializers.IntegerField()
    done = serializers.IntegerField()
    by_institution = ProgressRowSerializer(many=True)
    by_rater = ProgressRowSerializer(many=True)


class AgreementReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgreementReport
        fields = [
            "metric",
            "level",
            "value",
            "ci_low",
            "ci_high",
            "n_units",
            "n_raters",
            "n_pairable",
            "parameters",
            "computed_at",
        ]


class ConsensusSerializer(serializers.ModelSerializer):
    latent_index = serializers.IntegerField(source="latent.index", read_only=True)

    class Meta:
        model = Consensus
        fields = [
            "latent",
            "latent_index",
            "scope",
            "method",
            "posterior",
            "map_concept",
            "entropy",
            "n_labels",
            "n_raters",
            "n_rounds",
            "agreement",
            "routing",
            "routing_reason",
            "detection_accuracy",
            "detection_n",
            "computed_at",
        ]


class RaterReliabilitySerializer(serializers.ModelSerializer):
    rater = serializers.CharField(source="rater.profile.pseudonym", read_only=True)

    class Meta:
        model = RaterReliability
        fields = [
            "rater",
            "scope",
            "test_retest",
            "test_retest_low",
            "test_retest_high",
            "test_retest_n_pairs",
            "test_retest_reason",
            "learnability",
            "learnability_reason",
            "ds_accuracy",
            "weight",
            "computed_at",
        ]


class TrendPointSerializer(serializers.Serializer):
    round_id = serializers.IntegerField()
    name = serializers.CharField()
    rubric_version = serializers.IntegerField()
    alpha = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    is_current = serializers.BooleanField()


class RevealedLabelSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    concept_code = serializers.CharField()
    concept_name = serializers.CharField()
    free_text = serializers.CharField()
    confidence = serializers.IntegerField()
    rationale = serializers.CharField()


class ConceptCountSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    n = serializers.IntegerField()


class LatentDistributionSerializer(serializers.Serializer):
    latent_id = serializers.IntegerField()
    latent_index = serializers.IntegerField()
    counts = serializers.SerializerMethodField()
    labels = RevealedLabelSerializer(many=True)

    @extend_schema_field(ConceptCountSerializer(many=True))
    def get_counts(self, item) -> list[dict]:
        return [{"code": code, "name": name, "n": n} for code, name, n in item.counts]


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "round", "latent", "author", "text", "created_at"]

    def get_author(self, comment) -> str:
        from ..selectors import author_pseudonym

        return author_pseudonym(comment.author)


class CommentCreateInputSerializer(serializers.Serializer):
    latent = serializers.IntegerField()
    text = serializers.CharField(max_length=settings.MAX_TEXT_CHARS)


class TokenSerializer(serializers.Serializer):
    space = serializers.CharField(allow_blank=True, help_text="Whitespace before the token")
    text = serializers.CharField()
    activation = serializers.FloatField()


class ExampleSerializer(serializers.Serializer):
    max_activation = serializers.FloatField()
    tokens = TokenSerializer(many=True)
    cut_left = serializers.BooleanField()
    cut_right = serializers.BooleanField()


class QuantileGroupSerializer(serializers.Serializer):
    bin = serializers.IntegerField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    examples = ExampleSerializer(many=True)


class EvidenceSerializer(serializers.Serializer):
    density = serializers.FloatField(allow_null=True, help_text="Withheld (null) on labelling items")
    max_activation = serializers.FloatField(allow_null=True, help_text="Withheld (null) on labelling items")
    figures_hidden = serializers.BooleanField(
        help_text="A labelling item: a draw of the examples; density, max activation and histogram withheld"
    )
    top = ExampleSerializer(many=True)
    quantile_groups = QuantileGroupSerializer(many=True)
    histogram_counts = serializers.ListField(child=serializers.IntegerField())
    histogram_edges = serializers.ListField(child=serializers.FloatField())


class OwnLabelSerializer(serializers.ModelSerializer):
    concept_code = serializers.CharField(source="concept.code", read_only=True)

    class Meta:
        model = Label
        fields = [
            "id",
            "concept_code",
            "free_text",
            "confidence",
            "rationale",
            "time_spent_seconds",
            "submitted_at",
            "updated_at",
        ]


class AssignmentDetailSerializer(serializers.Serializer):
    """One item of the caller's queue: the evidence, the rubric, the caller's own label. Nothing that
    anchors (tags, consensus, other raters' labels) and nothing that marks a repeat."""

    id = serializers.IntegerField()
    round = serializers.IntegerField()
    round_status = serializers.CharField()
    position = serializers.IntegerField()
    evidence = EvidenceSerializer()
    concepts = ConceptSerializer(many=True)
    guidelines = serializers.CharField(max_length=settings.MAX_GUIDELINES_CHARS)
    label = OwnLabelSerializer(allow_null=True)


class LabelSubmitInputSerializer(serializers.Serializer):
    concept_code = serializers.CharField(max_length=50)
    free_text = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    confidence = serializers.IntegerField(min_value=1, max_value=5)
    rationale = serializers.CharField(min_length=RATIONALE_MIN_LENGTH, max_length=settings.MAX_TEXT_CHARS)
    time_spent_seconds = serializers.FloatField(min_value=0, required=False, default=0.0)
    idempotency_key = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="Or the Idempotency-Key header: a retry with the same key "
        "returns the saved label instead of a duplicate.",
    )


class LabelSubmitResultSerializer(serializers.Serializer):
    label = OwnLabelSerializer()
    created = serializers.BooleanField()
    replayed = serializers.BooleanField()


class LabelSerializer(serializers.ModelSerializer):
    """A label as the round's watchers read it: the rater by pseudonym."""

    concept_code = serializers.CharField(source="concept.code", read_only=True)
    round = serializers.IntegerField(source="assignment.round_id", read_only=True)
    latent = serializers.IntegerField(source="assignment.latent_id", read_only=True)
    rater = serializers.CharField(source="assignment.rater.profile.pseudonym", read_only=True)
    is_repeat = serializers.BooleanField(source="assignment.is_repeat", read_only=True)

    class Meta:
        model = Label
        fields = [
            "id",
            "round",
            "latent",
            "rater",
            "concept_code",
            "free_text",
            "confidence",
            "rationale",
            "is_repeat",
            "time_spent_seconds",
            "submitted_at",
            "updated_at",
        ]


class DetectionItemSerializer(serializers.ModelSerializer):
    """Whether the snippet activates the latent is never sent."""

    text = serializers.CharField(source="snippet.text", read_only=True)
    answer = serializers.BooleanField(allow_null=True, read_only=True)

    class Meta:
        model = DetectionItem
        fields = ["id", "position", "concept_code", "text", "answer"]


class DetectionAnswerSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    says_match = serializers.BooleanField()


class DetectionAnswersInputSerializer(serializers.Serializer):
    answers = DetectionAnswerSerializer(many=True)


class CountSerializer(serializers.Serializer):
    n = serializers.IntegerField()


class AdjudicationSerializer(serializers.ModelSerializer):
    concept_code = serializers.CharField(source="concept.code", read_only=True)
    senior = serializers.CharField(source="senior.profile.pseudonym", read_only=True, allow_null=True)
    overrode_concept = serializers.CharField(source="overrode.map_concept", read_only=True, allow_null=True)

    class Meta:
        model = Adjudication
        fields = ["id", "latent", "senior", "concept_code", "rationale", "overrode", "overrode_concept", "decided_at"]


class AdjudicationCreateInputSerializer(serializers.Serializer):
    latent = serializers.IntegerField()
    concept_code = serializers.CharField(max_length=50)
    rationale = serializers.CharField(min_length=RATIONALE_MIN_LENGTH, max_length=settings.MAX_TEXT_CHARS)


class LatentBrowseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sae = serializers.IntegerField(source="sae_id")
    index = serializers.IntegerField()
    status = serializers.CharField()
    density = serializers.FloatField()
    consensus_concept = serializers.CharField(allow_null=True)
    consensus_entropy = serializers.FloatField(allow_null=True)
    consensus_agreement = serializers.FloatField(allow_null=True)
    consensus_n_labels = serializers.IntegerField(allow_null=True)
    consensus_n_raters = serializers.IntegerField(allow_null=True)
    detection_accuracy = serializers.FloatField(allow_null=True)


class HistoryLabelSerializer(serializers.Serializer):
    round_id = serializers.IntegerField()
    round_name = serializers.CharField()
    round_kind = serializers.CharField()
    round_status = serializers.CharField()
    pseudonym = serializers.CharField()
    institution = serializers.CharField()
    concept_code = serializers.CharField()
    concept_name = serializers.CharField()
    free_text = serializers.CharField()
    confidence = serializers.IntegerField()
    rationale = serializers.CharField()
    is_repeat = serializers.BooleanField()
    submitted_at = serializers.DateTimeField()
    n_revisions = serializers.IntegerField()


class LatentLabelsSerializer(serializers.Serializer):
    latent = serializers.IntegerField()
    consensus = ConsensusSerializer(allow_null=True)
    scopes = ConsensusSerializer(many=True)
    adjudications = AdjudicationSerializer(many=True)
    labels = HistoryLabelSerializer(many=True)
    statistics = StatisticsStateSerializer(help_text="whether the consensus above is final (the SAE's rounds)")
