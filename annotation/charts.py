"""Small inline SVG charts built on the server: every value and label passes through format_html."""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe


def _join(parts: Sequence[SafeString]) -> SafeString:
    # Each part comes from format_html, which escaped its arguments; joining keeps them escaped.
    return mark_safe("".join(parts))  # noqa: S308


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100 or abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.2f}"


def histogram_svg(
    *,
    counts: Sequence[int],
    edges: Sequence[float],
    width: int = 340,
    height: int = 130,
    title: str = "Activation histogram",
) -> SafeString:
    """Bars of `counts` over `edges` (len(counts) + 1, log-spaced from mining); bar heights on a log scale
    so that the rare strong activations stay visible beside the many weak ones. Axes: activation along x
    (ticks at five bin edges), token count along y (log scale, 1 and the largest count marked)."""
    if not counts or len(edges) != len(counts) + 1:
        return format_html('<p class="muted">{}</p>', "No histogram recorded for this latent.")
    left, bottom, top_pad = 34, 30, 6
    plot_width, plot_height = width - left - 4, height - bottom - top_pad
    bar_width = plot_width / len(counts)
    top = math.log1p(max(counts)) or 1.0
    bars = []
    for position, count in enumerate(counts):
        bar = plot_height * math.log1p(count) / top
        bars.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="#2f6f9f"><title>{} – {}: {} tokens</title></rect>',
                f"{left + position * bar_width:.2f}",
                f"{top_pad + plot_height - bar:.2f}",
                f"{max(bar_width - 1, 0.5):.2f}",
                f"{bar:.2f}",
                _number(edges[position]),
                _number(edges[position + 1]),
                count,
            )
        )
    base = top_pad + plot_height
    axis = [
        format_html(
            '<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#8894a2"/>'
            '<line x1="{0}" y1="{3}" x2="{0}" y2="{1}" stroke="#8894a2"/>'
            '<text class="axis-label" x="{4}" y="{5}" text-anchor="middle">activation</text>'
            '<text class="axis-label" x="{6}" y="{7}" text-anchor="end">{8}</text>'
            '<text class="axis-label" x="{6}" y="{9}" text-anchor="end">1</text>'
            '<text class="axis-label" x="9" y="{10}" text-anchor="middle" transform="rotate(-90 9 {10})">tokens</text>',
            left,
            f"{base:.1f}",
            width - 4,
            top_pad,
            left + plot_width / 2,
            height - 2,
            left - 3,
            top_pad + 8,
            max(counts),
            f"{base - plot_height * math.log1p(1) / top + 3:.1f}",
            f"{top_pad + plot_height / 2:.1f}",
        )
    ]
    n_bins = len(counts)
    for tick in sorted({round(n_bins * i / 4) for i in range(5)}):
        x = left + tick * bar_width
        axis.append(
            format_html(
                '<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#8894a2"/>'
                '<text class="axis-label" x="{0}" y="{3}" text-anchor="middle">{4}</text>',
                f"{x:.1f}",
                f"{base:.1f}",
                f"{base + 4:.1f}",
                f"{base + 14:.1f}",
                _number(edges[tick]),
            )
        )
    return format_html(
        '<svg class="chart histogram" viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}</svg>',
        width,
        height,
        f"{title}: {sum(counts)} active tokens from {_number(edges[0])} to {_number(edges[-1])}",
        _join(bars),
        _join(axis),
    )


def alpha_trend_svg(*, points: Sequence, width: int = 420, height: int = 160) -> SafeString:
    """Alpha with its CI per round along a calibration chain; `points` have name, alpha, ci_low, ci_high,
    rubric_version and is_current."""
    known = [p for p in points if p.alpha is not None]
    if not known:
        return format_html('<p class="muted">{}</p>', "No alpha computed yet along this calibration chain.")
    left, right, top, bottom = 34, 12, 10, 28
    low = min([0.0] + [p.ci_low if p.ci_low is not None else p.alpha for p in known])
    high = 1.0
    span = high - low or 1.0

    def x(i: int) -> float:
        return left + (width - left - right) * (i / max(len(points) - 1, 1) if len(points) > 1 else 0.5)

    def y(value: float) -> float:
        return top + (height - top - bottom) * (high - value) / span

    def f(value: float) -> str:
        return f"{value:.1f}"

    parts = [format_html('<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#8894a2"/>', left, top, height - bottom)]
    for tick in (low, 0.0, 0.5, 0.667, 0.8, 1.0):
        if low <= tick <= high:
            parts.append(
                format_html(
                    '<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#eceff3"/>'
                    '<text x="{3}" y="{4}" font-size="9" fill="#65707d" text-anchor="end">{5}</text>',
                    left,
                    f(y(tick)),
                    width - right,
                    left - 4,
                    f(y(tick) + 3),
                    f"{tick:.2f}",
                )
            )
    path = []
    for i, point in enumerate(points):
        if point.alpha is None:
            continue
        path.append(f"{'M' if not path else 'L'}{x(i):.1f},{y(point.alpha):.1f}")
        if point.ci_low is not None and point.ci_high is not None:
            parts.append(
                format_html(
                    '<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#2f6f9f" stroke-width="2" opacity=".5"/>',
                    f(x(i)),
                    f(y(point.ci_low)),
                    f(y(point.ci_high)),
                )
            )
        parts.append(
            format_html(
                '<circle cx="{}" cy="{}" r="{}" fill="{}"><title>{} (rubric v{}): α = {}</title></circle>',
                f(x(i)),
                f(y(point.alpha)),
                5 if point.is_current else 3.5,
                "#c0392b" if point.is_current else "#2f6f9f",
                point.name,
                point.rubric_version,
                f"{point.alpha:.3f}",
            )
        )
    for i, point in enumerate(points):
        name = point.name if len(point.name) <= 18 else point.name[:17] + "…"
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="9" fill="#65707d" text-anchor="middle">v{} · {}'
                "<title>{}</title></text>",
                f(x(i)),
                height - 10,
                point.rubric_version,
                name,
                point.name,
            )
        )
    line = format_html('<path d="{}" fill="none" stroke="#2f6f9f" stroke-width="1.5"/>', " ".join(path))
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="Alpha across calibration rounds">{}{}</svg>',
        width,
        height,
        line,
        _join(parts),
    )
