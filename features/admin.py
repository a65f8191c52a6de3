"""Admin for the latent catalogue."""

from django.contrib import admin

from accounts.admin import READ_SCOPES, ConcordAdmin
from accounts.models import Institution

from . import access
from .models import SAE, ActivationSet, Corpus, HookPoint, HostModel, Latent, LatentExample, Snippet

READ_SCOPES.update(
    {
        Institution: access.institutions_readable,
        Corpus: access.corpora_readable,
        Snippet: access.snippets_readable,
        HostModel: access.host_models_readable,
        HookPoint: access.hook_points_readable,
        ActivationSet: access.activation_sets_readable,
        SAE: access.saes_readable,
        Latent: access.latents_readable,
        LatentExample: access.examples_readable,
    }
)


@admin.register(HostModel)
class HostModelAdmin(ConcordAdmin):
    readable = staticmethod(access.host_models_readable)
    list_display = ["name", "source", "kind", "d_model", "n_layers"]


@admin.register(Corpus)
class CorpusAdmin(ConcordAdmin):
    readable = staticmethod(access.corpora_readable)
    writable = staticmethod(access.corpora_writable)
    list_display = ["name", "institution", "deidentified", "n_snippets", "created_at"]
    list_filter = ["institution", "deidentified"]


@admin.register(Snippet)
class SnippetAdmin(ConcordAdmin):
    readable = staticmethod(access.snippets_readable)
    list_display = ["external_id", "corpus", "position"]
    list_filter = ["corpus"]
    search_fields = ["external_id", "text"]


@admin.register(HookPoint)
class HookPointAdmin(ConcordAdmin):
    readable = staticmethod(access.hook_points_readable)
    list_display = ["name", "host_model", "layer", "site"]


@admin.register(ActivationSet)
class ActivationSetAdmin(ConcordAdmin):
    readable = staticmethod(access.activation_sets_readable)
    list_display = ["id", "corpus", "hook_point", "n_tokens", "dtype", "created_at"]


@admin.register(SAE)
class SAEAdmin(ConcordAdmin):
    readable = staticmethod(access.saes_readable)
    writable = staticmethod(access.saes_writable)
    list_display = ["name", "architecture", "d_in", "d_sae", "k", "published", "created_at"]
    list_filter = ["architecture", "published"]


@admin.register(Latent)
class LatentAdmin(ConcordAdmin):
    readable = staticmethod(access.latents_readable)
    list_display = ["sae", "index", "density", "max_activation", "status"]
    list_filter = ["sae", "status"]


@admin.register(LatentExample)
class LatentExampleAdmin(ConcordAdmin):
    readable = staticmethod(access.examples_readable)
    list_display = ["latent", "kind", "rank", "max_activation", "snippet"]
    list_filter = ["kind"]
    raw_id_fields = ["latent", "snippet"]
