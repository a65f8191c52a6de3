"""API routes for the catalogue."""

from django.urls import path

from . import apis

urlpatterns = [
    path("corpora/", apis.CorpusListApi.as_view(), name="corpus-list"),
    path("corpora/<int:pk>/", apis.CorpusDetailApi.as_view(), name="corpus-detail"),
    path("snippets/", apis.SnippetListApi.as_view(), name="snippet-list"),
    path("host-models/", apis.HostModelListApi.as_view(), name="hostmodel-list"),
    path("hook-points/", apis.HookPointListApi.as_view(), name="hookpoint-list"),
    path("activation-sets/", apis.ActivationSetListApi.as_view(), name="activationset-list"),
    path("saes/", apis.SAEListApi.as_view(), name="sae-list"),
    path("saes/<int:pk>/", apis.SAEDetailApi.as_view(), name="sae-detail"),
    path("latents/", apis.LatentListApi.as_view(), name="latent-list"),
    path("latents/<int:pk>/", apis.LatentDetailApi.as_view(), name="latent-detail"),
]
