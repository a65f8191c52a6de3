"""Web routes of the jobs pages (researchers and admins)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.jobs_page, name="jobs-page"),
    path("progress.json", views.jobs_progress, name="jobs-progress"),
    path("export.csv", views.jobs_export, name="jobs-export"),
    path("launch/<str:what>/", views.job_launch, name="job-launch"),
    path("<int:job_id>/", views.job_page, name="job-page"),
    path("<int:job_id>/cancel/", views.job_cancel_view, name="job-cancel-page"),
    path("saes/<int:sae_id>/", views.sae_compute, name="sae-compute-page"),
    path("sweeps/<int:sweep_id>/", views.sweep_page, name="sweep-page"),
]
