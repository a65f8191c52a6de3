"""Template filter `public_paths`: absolute server paths in a value become artifact-relative names."""

from django import template

from accounts.redaction import without_server_paths

register = template.Library()


@register.filter
def public_paths(value):
    return without_server_paths(value)
