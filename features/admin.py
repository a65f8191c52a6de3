"""Admin for the latent catalogue."""
from django.contrib import admin

from accounts.admin import ConcordAdmin

from .models import SAE, ActivationSet, Corpus, HookPoint, HostModel, Latent, LatentExample, Snippet


@admin.register(HostModel)
class HostModelAdmin(ConcordAdmin):
    list_display = ["name", "source", "kind", "d_model", "n_layers"]


@admin.register(Corpus)
class CorpusAdmin(ConcordAdmin):
    list_display = ["name", "institution", "deidentified", "n_snippets", "created_at"]
    list_filter = ["institution", "deidentified"]


@admin.register(Snippet)
class SnippetAdmin(ConcordAdmin):
    list_display = ["external_id", "corpus", "position"]
    list_filter = ["corpus"]
    search_fields = ["external_id", "text"]


@admin.register(HookPoint)
class HookPointAdmin(ConcordAdmin):
    list_display = ["name", "host_model", "layer", "site"]


@admin.register(ActivationSet)
class ActivationSetAdmin(ConcordAdmin):
    list_display = ["id", "corpus", "hook_point", "n_tokens", "dtype", "created_at"]


@admin.register(SAE)
class SAEAdmin(ConcordAdmin):
    list_display = ["name", "architecture", "d_in", "d_sae", "k", "published", "created_at"]
    list_filter = ["architecture", "published"]


@admin.register(Latent)
class LatentAdmin(ConcordAdmin):
    list_display = ["sae", "index", "density", "max_activation", "status"]
    list_filter = ["sae", "status"]


@admin.register(LatentExample)
class LatentExampleAdmin(ConcordAdmin):
    list_display = ["latent", "kind", "rank", "max_activation", "snippet"]
    list_filter = ["kind"]
    raw_id_fields = ["latent", "snippet"]
