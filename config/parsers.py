"""DRF parsers and content negotiation that apply the request limits to every body DRF parses.

RequestLimitsMiddleware checks bodies by their declared Content-Type before any view runs, but DRF
also parses bodies declared as ``application/*``, ``*/*`` or ``multipart/*; boundary=…`` (its parser
selection matches wildcards). So the limits live here too, where the body is actually decoded: NUL
bytes and nesting beyond MAX_JSON_DEPTH answer 400 naming the top-level field, whatever the declared
type, and a wildcard Content-Type (which names no format) answers 415."""

from __future__ import annotations

import codecs
import json

from django.conf import settings
from rest_framework import exceptions, negotiation, parsers
from rest_framework.utils import json as drf_json

from config.middleware import deep_key, error_body, form_refusal, refusal, too_deep_message


def _refuse(path: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError(error_body(path, message))


class SafeJSONParser(parsers.JSONParser):
    """JSON, refusing NUL anywhere and nesting beyond MAX_JSON_DEPTH (a RecursionError was a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        limit = settings.MAX_JSON_DEPTH
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        try:
            data = json.loads(text, parse_constant=drf_json.strict_constant if self.strict else None)
        except RecursionError:
            raise _refuse(deep_key(text, limit), too_deep_message(limit)) from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        found = refusal(data, limit)
        if found is not None:
            raise _refuse(*found)
        return data


class SafeFormParser(parsers.FormParser):
    """URL-encoded forms, refusing NUL in any name or value."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        found = form_refusal(data.lists())
        if found is not None:
            raise _refuse(*found)
        return data


class SafeMultiPartParser(parsers.MultiPartParser):
    """Multipart forms, refusing NUL in any field name or value (files are checked by their importers)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        found = form_refusal(parsed.data.lists())
        if found is not None:
            raise _refuse(*found)
        return parsed


class ConcreteContentNegotiation(negotiation.DefaultContentNegotiation):
    """Refuses a request body whose Content-Type is a wildcard (``application/*``, ``*/*``): 415."""

    def select_parser(self, request, parsers):
        if "*" in (request.content_type or "").split(";", 1)[0]:
            return None  # DRF answers 415 Unsupported Media Type
        return super().select_parser(request, parsers)
