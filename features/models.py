"""The latent catalogue: host models, corpora and snippets, hook points, activation sets, SAEs, latents."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from accounts.models import Institution


class HostModel(models.Model):
    class Kind(models.TextChoices):
        ENCODER = "encoder", "Encoder (BERT-like)"
        CAUSAL = "causal", "Causal (GPT-like)"

    name = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=500, help_text="Hugging Face id or local path")
    revision = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    d_model = models.PositiveIntegerField()
    n_layers = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Corpus(models.Model):
    # Unique per institution and among shared corpora, not globally: a global clash would tell an importer
    # that another institution's private corpus of that name exists.
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    licence = models.CharField(max_length=200, blank=True)
    institution = models.ForeignKey(
        Institution,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="corpora",
        help_text="Owning institution; empty means shared with every institution.",
    )
    deidentified = models.BooleanField(default=False)
    n_snippets = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "corpora"
        constraints = [
            models.UniqueConstraint(fields=["institution", "name"], name="corpus_unique_name_per_institution"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(institution__isnull=True), name="corpus_unique_shared_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Snippet(models.Model):
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="snippets")
    external_id = models.CharField(max_length=200)
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    concept_tags = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Order within the corpus (activation index)")

    class Meta:
        ordering = ["corpus", "position"]
        constraints = [
            models.UniqueConstraint(fields=["corpus", "external_id"], name="snippet_unique_external_id"),
        ]
        indexes = [models.Index(fields=["corpus", "position"])]

    def __str__(self) -> str:
        return f"{self.corpus.name}:{self.external_id}"


class HookPoint(models.Model):
    class Site(models.TextChoices):
        RESID_POST = "resid_post", "Residual stream (post)"
        MLP_OUT = "mlp_out", "MLP output"
        ATTN_OUT = "attn_out", "Attention output"

    host_model = models.ForeignKey(HostModel, on_delete=models.CASCADE, related_name="hook_points")
    name = models.CharField(max_length=100, help_text="blocks.{L}.hook_resid_post etc.")
    layer = models.PositiveIntegerField()
    site = models.CharField(max_length=20, choices=Site.choices)

    class Meta:
        ordering = ["host_model", "layer", "site"]
        constraints = [models.UniqueConstraint(fields=["host_model", "name"], name="hookpoint_unique_name")]

    def __str__(self) -> str:
        return f"{self.host_model.name}/{self.name}"


class ActivationSet(models.Model):
    host_model = models.ForeignKey(HostModel, on_delete=models.PROTECT, related_name="activation_sets")
    hook_point = models.ForeignKey(HookPoint, on_delete=models.PROTECT, related_name="activation_sets")
    corpus = models.ForeignKey(Corpus, on_delete=models.PROTECT, related_name="activation_sets")
    artifact_uri = models.CharField(max_length=500)
    n_tokens = models.PositiveBigIntegerField(default=0)
    dtype = models.CharField(max_length=20, default="float16")
    normalisation = models.JSONField(default=dict, blank=True, help_text="mean vector and scale")
    # inference.Job id; a plain integer so that features never imports the inference app.
    source_job_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.corpus.name} @ {self.hook_point}"


class SAE(models.Model):
    class Architecture(models.TextChoices):
        RELU = "relu", "ReLU + L1"
        TOPK = "topk", "TopK"
        BATCHTOPK = "batchtopk", "BatchTopK"
        JUMPRELU = "jumprelu", "JumpReLU"
        MATRYOSHKA = "matryoshka", "Matryoshka"

    name = models.CharField(max_length=200, unique=True)
    hook_point = models.ForeignKey(HookPoint, on_delete=models.PROTECT, related_name="saes")
    activation_set = models.ForeignKey(
        ActivationSet, null=True, blank=True, on_delete=models.SET_NULL, related_name="saes"
    )
    architecture = models.CharField(max_length=20, choices=Architecture.choices)
    d_in = models.PositiveIntegerField()
    d_sae = models.PositiveIntegerField()
    k = models.PositiveIntegerField(null=True, blank=True)
    l1_coefficient = models.FloatField(null=True, blank=True)
    normalisation = models.JSONField(default=dict, blank=True)
    hyperparameters = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="mse, fve, l0, dead_fraction, ...")
    artifact_uri = models.CharField(max_length=500)
    source_job_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    sweep_group = models.CharField(max_length=100, blank=True)
    published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "SAE"

    def __str__(self) -> str:
        return self.name


class Latent(models.Model):
    class Status(models.TextChoices):
        UNLABELLED = "unlabelled", "Unlabelled"
        IN_ROUND = "in_round", "In a round"
        CONSENSUS = "consensus", "Consensus"
        AMBIGUOUS = "ambiguous", "Ambiguous"
        ADJUDICATED = "adjudicated", "Adjudicated"

    sae = models.ForeignKey(SAE, on_delete=models.CASCADE, related_name="latents")
    index = models.PositiveIntegerField()
    density = models.FloatField(default=0.0)
    max_activation = models.FloatField(default=0.0)
    mean_activation = models.FloatField(default=0.0)
    histogram = models.JSONField(default=dict, blank=True, help_text="{'counts': [...], 'edges': [...]}")
    best_tag = models.CharField(max_length=50, blank=True)
    best_tag_r = models.FloatField(null=True, blank=True)
    tag_entropy = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.UNLABELLED, db_index=True)
    logit_effects = models.JSONField(
        default=dict,
        blank=True,
        help_text="causal hosts: {'raised': [{'token', 'id', 'logit'}...], 'lowered': [...], 'method': str}, "
        "the decoder direction through the unembedding; {} for encoders",
    )
    # Protected-attribute associations above the detector's threshold, whatever the label:
    # [{"tag": "SEX_GENDER:female", "attribute": "SEX_GENDER", "r": 0.41}, ...], strongest first.
    protected_associations = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["sae", "index"]
        constraints = [models.UniqueConstraint(fields=["sae", "index"], name="latent_unique_index_per_sae")]

    def __str__(self) -> str:
        return f"{self.sae.name}#{self.index}"


class LatentExample(models.Model):
    class Kind(models.TextChoices):
        TOP = "top", "Top activating"
        QUANTILE = "quantile", "Quantile sample"
        NEGATIVE = "negative", "Non-activating"

    latent = models.ForeignKey(Latent, on_delete=models.CASCADE, related_name="examples")
    snippet = models.ForeignKey(Snippet, on_delete=models.CASCADE, related_name="latent_examples")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    rank = models.PositiveIntegerField(help_text="Rank among top examples, or quantile bin")
    max_activation = models.FloatField()
    tokens = models.JSONField(default=list)
    activations = models.JSONField(default=list)

    class Meta:
        ordering = ["latent", "kind", "rank"]
        constraints = [
            models.CheckConstraint(condition=Q(max_activation__gte=0), name="example_activation_nonnegative"),
        ]
        indexes = [models.Index(fields=["latent", "kind", "rank"])]
