"""The drift page's rate-against-rate grid: counts per log-rate cell, never one entry per latent."""

from __future__ import annotations

import numpy as np
import pytest

from inference.engine.rate_grid import rate_histogram


def test_latents_land_in_the_cells_of_their_log_rates():
    reference = np.array([1.0, 0.1, 0.1, 1e-3, 0.0, 0.0, 1e-9])
    corpus = np.array([1.0, 0.1, 1e-3, 0.1, 0.0, 1e-2, 0.0])
    grid = rate_histogram(reference, corpus, floor=1e-4, bins=4)  # one bin per decade: [1e-4,1e-3) … [0.1, 1]
    assert grid["n_latents"] == 6 and grid["never_fired"] == 1
    cells = {(i, j): n for i, j, n in grid["cells"]}
    assert cells == {(3, 3): 2, (3, 1): 1, (1, 3): 1, (0, 2): 1, (0, 0): 1}  # 1.0 falls in the top bin; 1e-9 → 0


def test_the_grid_of_131k_latents_has_at_most_bins_squared_cells():
    rng = np.random.default_rng(0)
    reference = 10 ** rng.uniform(-6, 0, size=131_072)
    corpus = reference * 2 ** rng.normal(0, 1, size=reference.size)
    grid = rate_histogram(reference, np.minimum(corpus, 1.0), bins=48)
    assert len(grid["cells"]) <= 48 * 48
    assert sum(n for _, _, n in grid["cells"]) == grid["n_latents"] == 131_072


def test_mismatched_or_meaningless_input_is_refused():
    with pytest.raises(ValueError, match="length"):
        rate_histogram(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="floor"):
        rate_histogram(np.ones(3), np.ones(3), floor=0)
