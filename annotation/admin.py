"""Admin for rubrics, rounds, labels and their statistics."""
from django.contrib import admin

from accounts.admin import ConcordAdmin

from . import models


class ConceptInline(admin.TabularInline):
    model = models.Concept
    extra = 0


@admin.register(models.Rubric)
class RubricAdmin(ConcordAdmin):
    list_display = ["name", "created_at"]


@admin.register(models.RubricVersion)
class RubricVersionAdmin(ConcordAdmin):
    list_display = ["rubric", "version", "created_at"]
    inlines = [ConceptInline]


@admin.register(models.Round)
class RoundAdmin(ConcordAdmin):
    list_display = ["name", "kind", "status", "sae", "overlap", "blind", "created_at"]
    list_filter = ["kind", "status"]
    filter_horizontal = ["institutions"]
    raw_id_fields = ["latents"]


@admin.register(models.Assignment)
class AssignmentAdmin(ConcordAdmin):
    list_display = ["round", "latent", "rater", "position", "is_repeat"]
    list_filter = ["round", "is_repeat"]
    raw_id_fields = ["latent", "repeat_of"]


@admin.register(models.Label)
class LabelAdmin(ConcordAdmin):
    list_display = ["assignment", "concept", "confidence", "submitted_at"]
    raw_id_fields = ["assignment"]


for model in (models.LabelRevision, models.DetectionItem, models.DetectionResponse, models.AgreementReport,
              models.Consensus, models.RaterReliability, models.Adjudication, models.Comment):
    admin.site.register(model, ConcordAdmin)
