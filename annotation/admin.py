"""Admin for rubrics, rounds, labels and their statistics."""

from django.contrib import admin

from accounts.admin import READ_SCOPES, ConcordAdmin, ViewOnlyAdmin

from . import access, models

READ_SCOPES.update(
    {
        models.Round: access.rounds_readable,
        models.Label: access.labels_readable,
        models.RubricVersion: access.rubric_versions_readable,
        models.Consensus: access.consensus_readable,
        models.Comment: access.comments_readable,
        models.Adjudication: access.adjudications_readable,
        models.DetectionResponse: access.detection_responses_readable,
    }
)


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
    readable = staticmethod(access.rounds_readable)
    writable = staticmethod(access.rounds_writable)
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
class LabelAdmin(ViewOnlyAdmin):
    # Blind in the back office too: a draft or open round's labels are listed once it closes. View only:
    # a rater's label changes through label_submit (a LabelRevision and an AuditEvent), never here.
    readable = staticmethod(access.labels_readable)
    list_display = ["assignment", "concept", "confidence", "submitted_at"]
    raw_id_fields = ["assignment"]


@admin.register(models.LabelRevision)
class LabelRevisionAdmin(ViewOnlyAdmin):
    def get_queryset(self, request):
        return super().get_queryset(request).filter(label__in=access.labels_readable(request.user).values("pk"))


@admin.register(models.Consensus)
class ConsensusAdmin(ConcordAdmin):
    readable = staticmethod(access.consensus_readable)


@admin.register(models.Adjudication)
class AdjudicationAdmin(ConcordAdmin):
    readable = staticmethod(access.adjudications_readable)


@admin.register(models.Comment)
class CommentAdmin(ConcordAdmin):
    readable = staticmethod(access.comments_readable)


@admin.register(models.DetectionResponse)
class DetectionResponseAdmin(ViewOnlyAdmin):
    # A detection round's answers are its content: blind like labels, and a rater's to change, not an admin's.
    readable = staticmethod(access.detection_responses_readable)
    list_display = ["item", "rater", "says_match", "submitted_at"]


for model in (models.DetectionItem, models.AgreementReport, models.RaterReliability):
    admin.site.register(model, ConcordAdmin)
