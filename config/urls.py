"""URL map: the web UI, the REST API under /api/v1/, its schema and docs, the admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from clinical import urls as clinical_urls
from config.steering_views import SteeringJobApi, SteeringRunApi, steering_job_page, steering_page

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("features.urls")),
    path("", include("annotation.urls")),
    path("", include("inference.urls")),
    path("", include(clinical_urls.api_urlpatterns)),
    path("steering/", SteeringRunApi.as_view(), name="steering-run-api"),
    path("steering/<int:job_id>/", SteeringJobApi.as_view(), name="steering-job-api"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up code as a script file, so the CSP needs no inline script;
    # Swagger UI itself comes from drf-spectacular-sidecar's static files, so the page works offline.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("account/", include("accounts.web_urls")),
    path("jobs/", include("inference.web_urls")),
    path("", include(clinical_urls.web_urlpatterns)),
    path("steering/", steering_page, name="steering"),
    path("steering/<int:job_id>/", steering_job_page, name="steering-job"),
    path("", include("annotation.web_urls")),
]
