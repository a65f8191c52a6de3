"""The drift page's chart stays light at 131k latents: a grid of counts plus the flagged points."""

from __future__ import annotations

import numpy as np

from clinical.charts import MAX_FLAGGED_POINTS, rate_grid_svg
from inference.engine.rate_grid import rate_histogram


def test_131k_latents_draw_at_most_one_square_per_cell_and_the_flagged_points():
    rng = np.random.default_rng(0)
    reference = 10 ** rng.uniform(-6, 0, size=131_072)
    corpus = np.minimum(reference * 2 ** rng.normal(0, 1, size=reference.size), 1.0)
    grid = rate_histogram(reference, corpus)
    flagged = [
        {"index": int(i), "rate_reference": float(reference[i]), "rate_corpus": float(corpus[i])} for i in range(1500)
    ]
    svg = rate_grid_svg(histogram=grid, flagged=flagged)
    assert svg.count("<rect") == len(grid["cells"]) <= 48 * 48
    assert svg.count("<circle") == MAX_FLAGGED_POINTS  # the strongest, in the order given
    assert len(svg) < 600_000  # one circle per latent was ~17 MB here


def test_an_empty_grid_still_draws_axes():
    svg = rate_grid_svg(histogram={"floor": 1e-5, "bins": 48, "cells": []}, flagged=[])
    assert "<rect" not in svg and "rate on the reference corpus" in svg
