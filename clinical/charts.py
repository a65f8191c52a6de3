"""Server-side SVG for the drift page: latents' firing rates on the reference against the audited corpus, binned."""

from __future__ import annotations

import math
from html import escape

from django.utils.safestring import mark_safe

MAX_FLAGGED_POINTS = 1000  # the strongest flagged latents drawn as points; all of them are in the grid


def rate_grid_svg(
    *,
    histogram: dict,
    flagged: list[dict],
    width: int = 460,
    height: int = 460,
) -> str:
    """Log–log density of latents (one shaded square per non-empty cell of `histogram`, darker for more
    latents, its count on hover) with the diagonal 'no change' and the flagged latents as orange points
    (the strongest MAX_FLAGGED_POINTS; `flagged` rows carry index, rate_reference and rate_corpus). Its size
    depends on the grid and the flags, not on the SAE's width."""
    pad = 44
    floor, bins = float(histogram["floor"]), int(histogram["bins"])
    lo = math.log10(floor)
    span_x, span_y = width - 2 * pad, height - 2 * pad

    def coordinate(rate: float) -> float:
        return (max(math.log10(max(rate, floor)), lo) - lo) / -lo  # 0 at the floor, 1 at rate 1

    def x(rate: float) -> float:
        return pad + coordinate(rate) * span_x

    def y(rate: float) -> float:
        return height - pad - coordinate(rate) * span_y

    parts = [
        (
            f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Firing rate per latent: reference against audited corpus">'
        ),
    ]
    cells = histogram["cells"]
    most = max((count for _, _, count in cells), default=1)
    cell_w, cell_h = span_x / bins, span_y / bins
    for i, j, count in cells:
        shade = 0.15 + 0.85 * math.log1p(count) / math.log1p(most)
        low_x, low_y = 10 ** (lo * (1 - i / bins)), 10 ** (lo * (1 - j / bins))
        high_x, high_y = 10 ** (lo * (1 - (i + 1) / bins)), 10 ** (lo * (1 - (j + 1) / bins))
        parts.append(
            f'<rect class="cell" x="{pad + i * cell_w:.1f}" y="{height - pad - (j + 1) * cell_h:.1f}" '
            f'width="{cell_w:.2f}" height="{cell_h:.2f}" fill="#17324d" fill-opacity="{shade:.2f}">'
            f"<title>{escape(f'{count} latents: reference {low_x:.1e}–{high_x:.1e}, corpus {low_y:.1e}–{high_y:.1e}')}"
            f"</title></rect>"
        )
    parts.append(
        f'<line x1="{x(floor):.1f}" y1="{y(floor):.1f}" x2="{x(1):.1f}" y2="{y(1):.1f}" stroke="#9aa5b1" '
        f'stroke-dasharray="4 3"/>'
    )
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
    for flag in flagged[:MAX_FLAGGED_POINTS]:
        reference, corpus = flag["rate_reference"], flag["rate_corpus"]
        title = escape(f"latent {flag['index']}: {reference:.2e} → {corpus:.2e}")
        parts.append(
            f'<circle class="flagged" cx="{x(reference):.1f}" cy="{y(corpus):.1f}" r="3.2" fill="#e66114" '
            f'fill-opacity=".8"><title>{title}</title></circle>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
