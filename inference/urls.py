"""API routes for jobs."""

from django.urls import path

from . import apis

urlpatterns = [
    path("jobs/", apis.JobListApi.as_view(), name="job-list"),
    path("jobs/<int:pk>/", apis.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/import-corpus/", apis.ImportCorpusApi.as_view(), name="job-import-corpus"),
    path("jobs/cache-activations/", apis.CacheActivationsApi.as_view(), name="job-cache-activations"),
    path("jobs/train-sae/", apis.TrainSAEApi.as_view(), name="job-train-sae"),
    path("jobs/mine-latents/", apis.MineLatentsApi.as_view(), name="job-mine-latents"),
    path("jobs/sweep/", apis.SweepLaunchApi.as_view(), name="job-sweep"),
    path("sweeps/<int:pk>/", apis.SweepDetailApi.as_view(), name="sweep-detail"),
    path("saes/<int:sae_id>/compute/", apis.SAEComputeApi.as_view(), name="sae-compute"),
]
