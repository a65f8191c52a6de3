"""Server-side SVG geometry for the sweep page: FVE against L0, with the Pareto front drawn through it."""

from __future__ import annotations

from typing import Any

from .selectors import pareto_front

WIDTH, HEIGHT, MARGIN = 560, 320, 48


def _scale(values: list[float], low_px: float, high_px: float):
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return lo, hi, lambda v: low_px + (v - lo) / span * (high_px - low_px)


def pareto_chart(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Points (x = L0, y = FVE) in SVG pixels, the front as a polyline, and axis ticks; None without data."""
    measured = [row for row in rows if row.get("l0") is not None and row.get("fve") is not None]
    if not measured:
        return None
    xs = [float(row["l0"]) for row in measured]
    ys = [float(row["fve"]) for row in measured]
    x_lo, x_hi, sx = _scale(xs, MARGIN, WIDTH - MARGIN / 2)
    y_lo, y_hi, sy = _scale(ys, HEIGHT - MARGIN, MARGIN / 2)
    front = pareto_front(list(zip(xs, ys, strict=True)))
    points = [
        {"x": round(sx(x), 1), "y": round(sy(y), 1), "sae": row["sae"], "l0": x, "fve": y, "on_front": i in front}
        for i, (row, x, y) in enumerate(zip(measured, xs, ys, strict=True))
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "points": points,
        "front": " ".join(f"{points[i]['x']},{points[i]['y']}" for i in front),
        "x_ticks": [{"px": round(sx(v), 1), "label": f"{v:.3g}"} for v in (x_lo, (x_lo + x_hi) / 2, x_hi)],
        "y_ticks": [{"px": round(sy(v), 1), "label": f"{v:.3f}"} for v in (y_lo, (y_lo + y_hi) / 2, y_hi)],
        "axis_y": HEIGHT - MARGIN,
        "axis_x": MARGIN,
        "right": WIDTH - MARGIN / 2,
        "top": MARGIN / 2,
    }
