"""API routes for accounts."""

from django.urls import path

from . import apis

urlpatterns = [
    path("institutions/", apis.InstitutionListApi.as_view(), name="institution-list"),
    path("me/", apis.MeApi.as_view(), name="me"),
]
