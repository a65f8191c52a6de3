"""Server-side SVG for the drift page: each latent's firing rate on the reference against the audited corpus."""

from __future__ import annotations

import math
from html import escape

from django.utils.safestring import mark_safe


def rate_scatter_svg(
    *,
    rates_reference: list[float],
    rates_corpus: list[float],
    flagged: set[int],
    width: int = 460,
    height: int = 460,
    floor: float = 1e-5,
) -> str:
    """Log–log scatter; the diagonal is 'no change', flagged latents in orange with their index on hover."""
    pad = 44
    lo = math.log10(floor)

    def coordinate(rate: float) -> float:
        return (max(math.log10(max(rate, floor)), lo) - lo) / -lo  # 0 at the floor, 1 at rate 1

    def x(rate: float) -> float:
        return pad + coordinate(rate) * (width - 2 * pad)

    def y(rate: float) -> float:
        return height - pad - coordinate(rate) * (height - 2 * pad)

    parts = [
        (
            f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Firing rate per latent: reference against audited corpus">'
        ),
        (
            f'<line x1="{x(floor):.1f}" y1="{y(floor):.1f}" x2="{x(1):.1f}" y2="{y(1):.1f}" stroke="#9aa5b1" '
            f'stroke-dasharray="4 3"/>'
        ),
    ]
    for exponent in range(int(lo), 1):
        rate = 10.0**exponent
        parts.append(
            f'<text x="{x(rate):.1f}" y="{height - pad + 16}" font-size="10" text-anchor="middle">1e{exponent}</text>'
        )
        parts.append(f'<text x="{pad - 6}" y="{y(rate) + 3:.1f}" font-size="10" text-anchor="end">1e{exponent}</text>')
    parts.append(
        f'<text x="{width / 2}" y="{height - 6}" font-size="11" text-anchor="middle">rate on the reference '
        f"corpus</text>"
    )
    parts.append(
        f'<text x="12" y="{height / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {height / 2})">rate on the audited corpus</text>'
    )
    for index, (reference, corpus) in enumerate(zip(rates_reference, rates_corpus, strict=False)):
        if reference <= 0 and corpus <= 0:
            continue
        colour, radius = ("#e66114", 3.2) if index in flagged else ("#17324d", 1.8)
        parts.append(
            f'<circle cx="{x(reference):.1f}" cy="{y(corpus):.1f}" r="{radius}" fill="{colour}" '
            f'fill-opacity=".7"><title>{escape(f"latent {index}: {reference:.2e} → {corpus:.2e}")}'
            f"</title></circle>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
