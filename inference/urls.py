"""API routes for jobs."""
from django.urls import path

from . import apis

urlpatterns = [
    path("jobs/", apis.JobListApi.as_view(), name="job-list"),
    path("jobs/<int:pk>/", apis.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/import-corpus/", apis.ImportCorpusApi.as_view(), name="job-import-corpus"),
]
