"""Rubrics, rounds, assignments, labels, detection items, agreement, consensus and adjudication."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinLengthValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from accounts.models import Institution
from features.models import SAE, Latent, Snippet

RESERVED_CONCEPTS = {
    "UNINTERPRETABLE": "Uninterpretable",
    "POLYSEMANTIC": "Polysemantic",
    "ARTIFACT": "Artifact (formatting, boilerplate, tokenisation)",
}
RATIONALE_MIN_LENGTH = 20
# MedSAE's threshold: a consensus label whose detection accuracy reaches it counts as validated.
DETECTION_VALIDATED_AT = 0.7
# The platform's consensus: the one the pages, routing, adjudication, detection and exports read. Other
# methods (the 1979 `dawid-skene` MLE) are stored beside it as baselines.
PLATFORM_CONSENSUS_METHOD = "bayesian-ds"
BASELINE_CONSENSUS_METHODS = ("dawid-skene",)


class Rubric(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class RubricVersion(models.Model):
    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    guidelines = models.TextField(blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rubric", "version"]
        constraints = [models.UniqueConstraint(fields=["rubric", "version"], name="rubricversion_unique")]

    def __str__(self) -> str:
        return f"{self.rubric.name} v{self.version}"


class Concept(models.Model):
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.CASCADE, related_name="concepts")
    code = models.CharField(max_length=50)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    synonyms = models.JSONField(default=list, blank=True)
    parent_code = models.CharField(max_length=50, blank=True)
    # A protected attribute (race/ethnicity, sex/gender, insurance, age band): latents associated with
    # it are flagged whatever their label (issue 12).
    protected = models.BooleanField(default=False)

    class Meta:
        ordering = ["rubric_version", "code"]
        constraints = [models.UniqueConstraint(fields=["rubric_version", "code"], name="concept_unique_code")]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class Round(models.Model):
    class Kind(models.TextChoices):
        CALIBRATION = "calibration", "Calibration"
        PRODUCTION = "production", "Production"
        DETECTION = "detection", "Detection"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        REVEALED = "revealed", "Revealed"

    class StatisticsStatus(models.TextChoices):
        NONE = "none", "None"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Computing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    sae = models.ForeignKey(SAE, on_delete=models.PROTECT, related_name="rounds")
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT, related_name="rounds")
    coordinator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="coordinated_rounds"
    )
    institutions = models.ManyToManyField(Institution, related_name="rounds", blank=True)
    latents = models.ManyToManyField(Latent, related_name="rounds", blank=True)
    overlap = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1)])
    repeat_fraction = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    min_repeats = models.PositiveSmallIntegerField(
        default=3, help_text="Hidden repeats every rater gets at least, whatever the repeat fraction (test–retest)"
    )
    blind = models.BooleanField(default=True)
    # The routing rule of DESIGN §5, per round: applied to the SAE-wide consensus when this round closes.
    routing_min_rounds = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1)], help_text="R: rounds with labels before a senior decides"
    )
    routing_entropy_ceiling = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="τ: a normalised posterior entropy above this is ambiguous",
    )
    routing_top_posterior_floor = models.FloatField(
        default=0.6,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A top posterior below this is ambiguous",
    )
    simulated = models.BooleanField(
        default=False,
        db_index=True,
        help_text="Labelled by simulated raters (the demo): left out of every export unless asked for",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    deadline = models.DateTimeField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups")
    selection_rule = models.CharField(max_length=40, blank=True)
    selection_parameters = models.JSONField(default=dict, blank=True, help_text="n_latents, seed, hand list")
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The statistics job of a closed round (annotation.tasks): its state, progress and message. The token
    # names the latest request: a delivery carrying an older token, or one whose computation finished, is
    # dropped.
    statistics_status = models.CharField(max_length=10, choices=StatisticsStatus.choices, default=StatisticsStatus.NONE)
    statistics_progress = models.FloatField(default=0.0)
    statistics_message = models.CharField(max_length=300, blank=True)
    statistics_updated_at = models.DateTimeField(null=True, blank=True)
    statistics_token = models.CharField(max_length=32, blank=True)
    # Its lease, as an inference job has one (docs/round-statistics.md): who computes it, until when the
    # lease runs (renewed by the worker's heartbeat), how many runs it had, when its message was last sent.
    statistics_worker = models.CharField(max_length=200, blank=True)
    statistics_lease_expires_at = models.DateTimeField(null=True, blank=True)
    statistics_attempts = models.PositiveSmallIntegerField(default=0)
    statistics_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="round_overlap_positive"),
            models.CheckConstraint(
                condition=Q(repeat_fraction__gte=0) & Q(repeat_fraction__lte=1), name="round_repeat_fraction_range"
            ),
            models.CheckConstraint(condition=Q(routing_min_rounds__gte=1), name="round_routing_min_rounds_positive"),
            models.CheckConstraint(
                condition=Q(routing_entropy_ceiling__gte=0)
                & Q(routing_entropy_ceiling__lte=1)
                & Q(routing_top_posterior_floor__gte=0)
                & Q(routing_top_posterior_floor__lte=1),
                name="round_routing_thresholds_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.status})"

    @property
    def statistics_pending(self) -> bool:
        """A closed round whose statistics are queued or computing: every page says so."""
        return self.statistics_status in (self.StatisticsStatus.QUEUED, self.StatisticsStatus.RUNNING)


class Assignment(models.Model):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="assignments")
    latent = models.ForeignKey(Latent, on_delete=models.PROTECT, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    position = models.PositiveIntegerField()
    is_repeat = models.BooleanField(default=False)
    repeat_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="repeats")

    class Meta:
        ordering = ["round", "rater", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["round", "latent", "rater", "is_repeat"], name="assignment_unique_per_round_latent_rater"
            ),
            models.CheckConstraint(
                condition=Q(is_repeat=False, repeat_of__isnull=True) | Q(is_repeat=True, repeat_of__isnull=False),
                name="assignment_repeat_has_original",
            ),
        ]
        indexes = [models.Index(fields=["rater", "round", "position"])]

    def __str__(self) -> str:
        return f"{self.round_id}:{self.latent_id}→{self.rater_id}{' (repeat)' if self.is_repeat else ''}"


class Label(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="label")
    concept = models.ForeignKey(Concept, on_delete=models.PROTECT, related_name="labels")
    free_text = models.CharField(max_length=300, blank=True)
    confidence = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    rationale = models.TextField(validators=[MinLengthValidator(RATIONALE_MIN_LENGTH)])
    time_spent_seconds = models.FloatField(default=0.0)
    idempotency_key = models.CharField(max_length=64, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["submitted_at"]
        constraints = [
            models.CheckConstraint(condition=Q(confidence__gte=1) & Q(confidence__lte=5), name="label_confidence_1_5"),
            models.CheckConstraint(condition=~Q(rationale=""), name="label_rationale_required"),
            models.UniqueConstraint(
                fields=["idempotency_key"], condition=~Q(idempotency_key=""), name="label_unique_idempotency_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assignment} = {self.concept.code}"


class LabelRevision(models.Model):
    """The earlier state of a label edited before its round closed: nothing is lost."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="revisions")
    concept_code = models.CharField(max_length=50)
    free_text = models.CharField(max_length=300, blank=True)
    confidence = models.PositiveSmallIntegerField()
    rationale = models.TextField()
    # The key of the submission that produced this earlier state: a late retry of it changes nothing.
    idempotency_key = models.CharField(max_length=64, blank=True, db_index=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label", "recorded_at"]


class DetectionItem(models.Model):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="detection_items")
    latent = models.ForeignKey(Latent, on_delete=models.PROTECT, related_name="detection_items")
    snippet = models.ForeignKey(Snippet, on_delete=models.PROTECT, related_name="+")
    is_activating = models.BooleanField()
    position = models.PositiveIntegerField()
    concept_code = models.CharField(max_length=50, blank=True, help_text="The consensus label being tested")

    class Meta:
        ordering = ["round", "latent", "position"]
        constraints = [
            models.UniqueConstraint(fields=["round", "latent", "snippet"], name="detectionitem_unique"),
        ]


class DetectionResponse(models.Model):
    item = models.ForeignKey(DetectionItem, on_delete=models.CASCADE, related_name="responses")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    says_match = models.BooleanField()
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "rater"], name="detectionresponse_unique")]


class AgreementReport(models.Model):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="agreement_reports")
    metric = models.CharField(max_length=40)
    level = models.CharField(max_length=20, blank=True)
    value = models.FloatField(null=True)
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    n_units = models.PositiveIntegerField(default=0)
    n_raters = models.PositiveIntegerField(default=0)
    n_pairable = models.PositiveIntegerField(default=0)
    parameters = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["round", "metric", "level"]
        constraints = [
            models.UniqueConstraint(fields=["round", "metric", "level"], name="agreementreport_unique"),
        ]


class ScopedQuerySet(models.QuerySet):
    """Rows computed over one scope: one round's labels, or every closed round of one SAE."""

    def of_round(self, round_id: int) -> ScopedQuerySet:
        return self.filter(round_id=round_id)

    def of_sae(self, sae_id: int) -> ScopedQuerySet:
        return self.filter(sae_id=sae_id)


class ConsensusQuerySet(ScopedQuerySet):
    def platform(self) -> ConsensusQuerySet:
        return self.filter(method=PLATFORM_CONSENSUS_METHOD)


def _one_scope(prefix: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(sae__isnull=False, round__isnull=True) | Q(sae__isnull=True, round__isnull=False),
        name=f"{prefix}_exactly_one_scope",
    )


class ScopedModel(models.Model):
    """A row whose scope is exactly one of a round (its labels) or an SAE (every closed round on it)."""

    round = models.ForeignKey(Round, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    sae = models.ForeignKey(SAE, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True

    @property
    def scope(self) -> str:
        """The scope's display name: `round:12` or `sae:3`."""
        return f"round:{self.round_id}" if self.round_id is not None else f"sae:{self.sae_id}"


class Consensus(ScopedModel):
    latent = models.ForeignKey(Latent, on_delete=models.CASCADE, related_name="consensus")
    method = models.CharField(max_length=20)
    posterior = models.JSONField(default=dict)
    map_concept = models.CharField(max_length=50)
    entropy = models.FloatField()
    n_labels = models.PositiveIntegerField(help_text="Judgments, hidden repeats included")
    n_raters = models.PositiveIntegerField(default=0, help_text="Distinct raters who labelled the latent")
    n_rounds = models.PositiveIntegerField(default=1)
    agreement = models.FloatField(null=True, blank=True, help_text="Share of agreeing pairs of first labels")
    routing = models.CharField(max_length=20, blank=True, help_text="consensus, another_round or adjudicate")
    routing_reason = models.CharField(max_length=200, blank=True)
    detection_accuracy = models.FloatField(null=True, blank=True, help_text="Share of correct detection answers")
    detection_n = models.PositiveIntegerField(default=0)
    detection_round = models.ForeignKey(
        Round,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The detection round that measured detection_accuracy",
    )
    computed_at = models.DateTimeField(auto_now=True)

    objects = ConsensusQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "consensus"
        indexes = [models.Index(fields=["sae", "method"]), models.Index(fields=["round", "method"])]
        constraints = [
            _one_scope("consensus"),
            models.UniqueConstraint(
                fields=["latent", "sae", "method"], condition=Q(sae__isnull=False), name="consensus_unique_sae"
            ),
            models.UniqueConstraint(
                fields=["latent", "round", "method"], condition=Q(round__isnull=False), name="consensus_unique_round"
            ),
            models.CheckConstraint(
                condition=Q(entropy__gte=0) & Q(entropy__lte=1.0000001), name="consensus_entropy_0_1"
            ),
        ]

    @property
    def validated(self) -> bool | None:
        return None if self.detection_accuracy is None else self.detection_accuracy >= DETECTION_VALIDATED_AT


class RaterReliability(ScopedModel):
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reliability")
    test_retest = models.FloatField(null=True, blank=True, help_text="Self-agreement kappa, shrunk toward the pool")
    test_retest_low = models.FloatField(null=True, blank=True)
    test_retest_high = models.FloatField(null=True, blank=True)
    test_retest_n_pairs = models.PositiveIntegerField(default=0, help_text="Repeat pairs the estimate rests on")
    test_retest_reason = models.CharField(max_length=200, blank=True)
    learnability = models.FloatField(null=True, blank=True)
    learnability_reason = models.CharField(max_length=200, blank=True)
    ds_accuracy = models.FloatField(null=True, blank=True)
    weight = models.FloatField(default=1.0)
    computed_at = models.DateTimeField(auto_now=True)

    objects = ScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "rater reliability"
        constraints = [
            _one_scope("raterreliability"),
            models.UniqueConstraint(
                fields=["rater", "sae"], condition=Q(sae__isnull=False), name="raterreliability_unique_sae"
            ),
            models.UniqueConstraint(
                fields=["rater", "round"], condition=Q(round__isnull=False), name="raterreliability_unique_round"
            ),
        ]


class Adjudication(models.Model):
    latent = models.ForeignKey(Latent, on_delete=models.PROTECT, related_name="adjudications")
    senior = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    concept = models.ForeignKey(Concept, on_delete=models.PROTECT, related_name="+")
    rationale = models.TextField(validators=[MinLengthValidator(RATIONALE_MIN_LENGTH)])
    overrode = models.ForeignKey(Consensus, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at"]
        constraints = [models.CheckConstraint(condition=~Q(rationale=""), name="adjudication_rationale_required")]


class Comment(models.Model):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="comments")
    latent = models.ForeignKey(Latent, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
