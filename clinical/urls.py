"""Web and API routes of the clinical pages."""

from django.urls import path

from . import apis, views

web_urlpatterns = [
    path("explain/", views.explain, name="explain"),
    path("explain/saved/", views.saved_notes, name="explain-saved"),
    path("drift/", views.drift_list, name="drift-list"),
    path("drift/<int:job_id>/", views.drift_detail, name="drift-detail"),
    path("protected/", views.protected_index, name="protected-index"),
    path("protected/<int:sae_id>/", views.protected_report, name="protected-report"),
]

api_urlpatterns = [
    path("explain/", apis.NoteExplainApi.as_view(), name="api-explain"),
    path("explain/saved/", apis.SavedNoteListApi.as_view(), name="api-explain-saved"),
    path("explain/saved/<int:note_id>/", apis.SavedNoteDetailApi.as_view(), name="api-explain-saved-detail"),
    path("drift-audits/", apis.DriftAuditCreateApi.as_view(), name="api-drift-create"),
    path("drift-audits/<int:job_id>/", apis.DriftAuditDetailApi.as_view(), name="api-drift-detail"),
    path("saes/<int:sae_id>/protected/", apis.ProtectedLatentsApi.as_view(), name="api-sae-protected"),
    path("saes/<int:sae_id>/protected/scan/", apis.ProtectedScanApi.as_view(), name="api-sae-protected-scan"),
]
