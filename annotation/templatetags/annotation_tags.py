"""Template helpers for the annotation pages: token highlights and inline charts, all escaped."""

from __future__ import annotations

from html import escape

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from .. import charts
from ..selectors.statistics import PENDING, Status, round_statistics_status

register = template.Library()


def _token_span(text: str, activation: float, shade: float) -> str:
    """One token shaded by activation / the latent's max. An active token is focusable (keyboard, and a
    tap on a touch screen) and shows its value in a tooltip (CSS, from data-act) while focused or hovered;
    screen readers read the value from aria-label."""
    if activation <= 0:
        return f'<span class="tok">{escape(text)}</span>'
    value = f"{float(activation):.3f}"
    return (
        f'<span class="tok" tabindex="0" role="mark" style="--a:{float(shade):.3f}" data-act="{value}" '
        f'aria-label="{escape(text)}, activation {value}">{escape(text)}</span>'
    )


@register.simple_tag
def token_spans(example) -> str:
    """The example's original text with each token's characters shaded (or, when the tokens could not be
    found in the text, the vocabulary strings).

    Built with html.escape rather than format_html per token: a labelling page holds ~4,500 tokens and
    format_html's machinery was half its rendering time. Every piece of text is escaped here; the
    numbers are floats formatted by us."""
    parts = ["… "] if example.cut_left else []
    if example.segments:
        for segment in example.segments:
            parts.append(
                escape(segment.text)
                if segment.activation is None
                else _token_span(segment.text, segment.activation, segment.shade)
            )
        if example.cut_right:
            parts.append(" …")
        return mark_safe("".join(parts))  # noqa: S308 - every text part escaped above
    for token in example.tokens:
        parts.append(f"{escape(token.space)}{_token_span(token.text, token.activation, token.shade)}")
    if example.cut_right:
        parts.append(" …")
    return mark_safe("".join(parts))  # noqa: S308 - every text part escaped above


@register.simple_tag
def histogram(evidence) -> str:
    return charts.histogram_svg(counts=evidence.histogram_counts, edges=evidence.histogram_edges)


@register.simple_tag
def alpha_trend(points) -> str:
    return charts.alpha_trend_svg(points=points)


@register.simple_tag
def statistics_badge(round_) -> str:
    """A round list's statistics cell: "statistics computing n%", "statistics failed", "done", or nothing
    for a round with no statistics yet (draft, open). Status and progress only: never the job's message."""
    status = round_statistics_status(round_)
    if status in PENDING:
        label = f"statistics computing {round_.statistics_progress * 100:.0f}%"
        title = "queued: waiting for a worker" if status == Status.QUEUED else "the statistics job is running"
    elif status == Status.FAILED:
        label, title = "statistics failed", "the statistics job failed: its dashboard says why"
    elif status == Status.DONE:
        return mark_safe('<span class="muted statistics-badge" data-statistics="done">done</span>')
    else:
        return ""
    return format_html(
        '<span class="pill statistics-{} statistics-badge" data-statistics="{}" title="{}">{}</span>',
        status,
        status,
        title,
        label,
    )


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):  # None, or "" for a missing template variable
        return None


@register.filter
def percent(value, digits: int = 0) -> str:
    value = _float(value)
    return "—" if value is None else f"{value * 100:.{int(digits)}f}%"


@register.filter
def number(value, digits: int = 3) -> str:
    value = _float(value)
    return "—" if value is None else f"{value:.{int(digits)}f}"


@register.simple_tag
def bar(share) -> str:
    """A horizontal bar of width share × 100 %."""
    share = 0.0 if share is None else min(max(float(share), 0.0), 1.0)
    return format_html('<span class="bar"><span style="width:{}%"></span></span>', f"{share * 100:.1f}")


def _role_links(user) -> list[tuple[str, str]]:
    """The sections this user's role may open, from the permission module: no link leads to a 403."""
    from django.urls import reverse

    from accounts.permissions import can_adjudicate, can_export, can_label, can_manage_rounds, can_read_labels

    links = []
    if can_label(user):
        links.append((reverse("queue"), "My queue"))
    if can_adjudicate(user):
        links.append((reverse("adjudication-queue"), "Adjudication"))
    if can_manage_rounds(user) or can_read_labels(user):
        links.append((reverse("round-list-page"), "Rounds"))
    if can_manage_rounds(user):
        links.append((reverse("rubric-list"), "Rubrics"))
    if can_read_labels(user):
        links.append((reverse("latent-browser"), "Latents"))
    if can_export(user):
        links.append((reverse("export"), "Export"))
    return links


@register.simple_tag(takes_context=True)
def annotation_nav(context) -> str:
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return ""
    return format_html_join("", '<a href="{}">{}</a>', _role_links(request.user))


@register.simple_tag(takes_context=True)
def site_nav(context) -> str:
    """The same links in the site header, so that error pages carry them too."""
    return annotation_nav(context)
