"""The drift page's rate-against-rate plot as a grid of counts: numpy only, so the web process can bin rates
without loading torch."""

from __future__ import annotations

import math

import numpy as np

RATE_FLOOR = 1e-5  # rates below this (and 0) sit in the lowest bin of the rate-against-rate grid
RATE_BINS = 48


def rate_histogram(
    rates_reference: np.ndarray, rates_corpus: np.ndarray, *, floor: float = RATE_FLOOR, bins: int = RATE_BINS
) -> dict:
    """How many latents fall in each cell of a bins × bins grid over log10 rate in [log10 floor, 0], the
    reference's rate along the first index and the audited corpus's along the second: what the page draws
    instead of one point per latent (its size then does not grow with the SAE's width). Rates below `floor`
    count in bin 0; latents that fired in neither corpus are left out and counted in `never_fired`.
    Returns {"floor", "bins", "n_latents", "never_fired", "cells": [[i, j, count], ...]} (non-empty cells)."""
    if not 0 < floor < 1 or bins < 1:
        raise ValueError("floor must be in (0, 1) and bins ≥ 1")
    a, b = np.asarray(rates_reference, dtype=np.float64), np.asarray(rates_corpus, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("the two rate vectors differ in length")
    fired = (a > 0) | (b > 0)
    low = math.log10(floor)

    def bin_of(rates: np.ndarray) -> np.ndarray:
        position = (np.log10(np.maximum(rates, floor)) - low) / -low
        return np.clip((position * bins).astype(np.int64), 0, bins - 1)

    counts = np.zeros((bins, bins), dtype=np.int64)
    np.add.at(counts, (bin_of(a[fired]), bin_of(b[fired])), 1)
    cells = [[int(i), int(j), int(counts[i, j])] for i, j in zip(*np.nonzero(counts), strict=True)]
    return {
        "floor": floor,
        "bins": bins,
        "n_latents": int(fired.sum()),
        "never_fired": int((~fired).sum()),
        "cells": cells,
    }
