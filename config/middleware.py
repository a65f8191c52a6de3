"""Middleware of the embedded server: Concord's own 404 page even with DEBUG on."""
from __future__ import annotations

from django.http import HttpResponseNotFound
from django.template.loader import render_to_string

_SKIP = ("/api/", "/admin/", "/static/")


class FriendlyNotFound:
    """`make run` serves with DEBUG on (static files, reloadable templates); Django then answers every 404
    with its technical page, which lists the URL map. This swaps an HTML 404 for templates/404.html,
    with the site's navigation. run_embedded installs it; production (DEBUG off) needs none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code == 404 and not request.path.startswith(_SKIP)
                and response.get("Content-Type", "").startswith("text/html")):
            return HttpResponseNotFound(render_to_string("404.html", {}, request=request))
        return response
