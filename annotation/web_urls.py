"""Web UI routes."""

from django.urls import path, re_path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    # physicians and seniors
    path("queue/", views.queue, name="queue"),
    path("rounds/<int:round_id>/queue/", views.round_queue, name="round-queue"),
    path("rounds/<int:round_id>/items/<int:position>/", views.item, name="item"),
    # coordinators
    path("rounds/", views.round_list, name="round-list-page"),
    path("rounds/new/", views.round_create, name="round-create"),
    path("rounds/<int:round_id>/", views.round_dashboard, name="round-dashboard"),
    re_path(
        r"^rounds/(?P<round_id>[0-9]+)/(?P<action>open|close|reveal|statistics|delete|deadline)/$",
        views.round_action,
        name="round-action",
    ),
    path("rounds/<int:round_id>/statistics-status/", views.round_statistics_status, name="round-statistics-status"),
    path("rounds/<int:round_id>/follow-up/new/", views.round_follow_up, name="round-follow-up"),
    path("rounds/<int:round_id>/discussion/", views.round_discussion, name="round-discussion"),
    path("rubrics/", views.rubric_list, name="rubric-list"),
    path("rubrics/new/", views.rubric_create, name="rubric-create"),
    path("rubrics/<int:rubric_id>/", views.rubric_edit, name="rubric-edit"),
    # seniors
    path("adjudication/", views.adjudication_queue, name="adjudication-queue"),
    path("adjudication/<int:latent_id>/", views.adjudication_decide, name="adjudication-decide"),
    # researchers
    path("labelled-latents/", views.latent_browser, name="latent-browser"),
    path("labelled-latents/<int:latent_id>/", views.latent_detail, name="latent-page"),
    path("export/", views.export, name="export"),
]
