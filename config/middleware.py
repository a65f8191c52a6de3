"""Middleware: request limits checked before any view reads the body — size (413), NUL bytes and JSON
nesting (400) — and, for the embedded server, Concord's own 404 page even with DEBUG on.

PostgreSQL refuses NUL in text (a DataError, so a 500) and Python's JSON decoder recurses once per
nesting level (a RecursionError, so a 500); both are answered here as a 400 naming the field instead."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpResponseNotFound, JsonResponse
from django.template.loader import render_to_string

NUL = "\x00"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _nul_paths(value, path: str) -> Iterator[str]:
    """Paths (``institutions[0]``, ``concepts[2].name``) of every string or key holding a NUL; iterative."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                yield where
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                if NUL in str(key):
                    yield child_path
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))


def _depth(value) -> tuple[int, str]:
    """The nesting depth of a decoded JSON value and the path of its deepest point; iterative."""
    deepest, deepest_path = 0, ""
    stack = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, (dict, list)):
            depth += 1
            if depth > deepest:
                deepest, deepest_path = depth, where
            if isinstance(item, dict):
                stack.extend((child, f"{where}.{key}" if where else str(key), depth) for key, child in item.items())
            else:
                stack.extend((child, f"{where}[{index}]", depth) for index, child in enumerate(item))
    return deepest, deepest_path


def _field(path: str) -> str:
    """The top-level field a path starts in: the key DRF-style error bodies use."""
    return path.split(".", 1)[0].split("[", 1)[0] or "non_field_errors"


_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def deep_key(text: str, limit: int) -> str:
    """The path (top-level key, or ``[i]`` position) where raw JSON text first nests deeper than `limit`.

    Used when the decoder itself gave up (RecursionError), so it reads tokens, not a decoded value."""
    depth, top, last_string = 0, "", ""
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token.startswith('"'):
            last_string = token
            continue
        if token in "[{":
            depth += 1
            if depth == 2 and not top:
                top = _decoded_key(last_string) if last_string else ""
            if depth > limit:
                return top
        else:
            depth -= 1
            if depth == 1:
                top, last_string = "", ""
    return top


def _decoded_key(token: str) -> str:
    try:
        return str(json.loads(token))
    except ValueError:
        return token.strip('"')


def refusal(data, limit: int) -> tuple[str, str] | None:
    """(path, message) for the first NUL or nesting beyond `limit` in a decoded body, else None."""
    depth, path = _depth(data)
    if depth > limit:
        return path, f"JSON nested {depth} levels deep; the limit is {limit}"
    for path in _nul_paths(data, ""):
        return path, "Null characters are not allowed"
    return None


def form_refusal(items) -> tuple[str, str] | None:
    """(field, message) for the first NUL in form (name, values) pairs, else None."""
    for name, values in items:
        for value in values:
            if (isinstance(value, str) and NUL in value) or NUL in name:
                return name, "Null characters are not allowed"
    return None


def error_body(path: str, message: str) -> dict:
    """A DRF-style error body naming the top-level field, with the full path in the message."""
    where = path if len(path) <= 80 else f"{path[:80]}…"
    return {_field(path): [f"{message} (at {where or 'the top level'})."]}


def too_deep_message(limit: int) -> str:
    return f"JSON nested deeper than {limit} levels"


def _bad_request(path: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(path, message), status=400)


class RequestLimitsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = self._refusal(request)
        return refused if refused is not None else self.get_response(request)

    def _refusal(self, request):
        for name, values in request.GET.lists():
            for value in values:
                if NUL in value or NUL in name:
                    return _bad_request(name, "Null characters are not allowed")
        content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.MAX_UPLOAD_BYTES if content_type == "multipart/form-data" else settings.MAX_REQUEST_BODY_BYTES
        if length > limit:
            what = "upload" if content_type == "multipart/form-data" else "request body"
            return JsonResponse(
                {"detail": f"The {what} is {length} bytes; the limit is {limit} bytes.", "limit_bytes": limit},
                status=413,
            )
        if request.method not in ("POST", "PUT", "PATCH", "DELETE") or length == 0:
            return None
        if content_type.endswith("json"):
            return self._json_refusal(request)
        if content_type in _FORM_TYPES:
            found = form_refusal(request.POST.lists())
            if found is not None:
                return _bad_request(*found)
        return None

    @staticmethod
    def _json_refusal(request):
        limit = settings.MAX_JSON_DEPTH
        try:
            data = json.loads(request.body)
        except RecursionError:
            text = request.body.decode("utf-8", "replace")
            return _bad_request(deep_key(text, limit), too_deep_message(limit))
        except ValueError:
            return None  # malformed JSON: the parser answers its own 400
        found = refusal(data, limit)
        return _bad_request(*found) if found is not None else None


_SKIP = ("/api/", "/admin/", "/static/")


class FriendlyNotFound:
    """`make run` serves with DEBUG on (static files, reloadable templates); Django then answers every 404
    with its technical page, which lists the URL map. This swaps an HTML 404 for templates/404.html,
    with the site's navigation. run_embedded installs it; production (DEBUG off) needs none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and not request.path.startswith(_SKIP)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return HttpResponseNotFound(render_to_string("404.html", {}, request=request))
        return response
