"""API routes for annotation."""
from django.urls import path

from . import apis

urlpatterns = [
    path("rounds/", apis.RoundListApi.as_view(), name="round-list"),
    path("rounds/<int:pk>/", apis.RoundDetailApi.as_view(), name="round-detail"),
    path("assignments/", apis.AssignmentListApi.as_view(), name="assignment-list"),
]
