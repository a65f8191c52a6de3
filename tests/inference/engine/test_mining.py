"""Latent mining on constructed corpora whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.engine.activations import ActivationStore, write_activation_arrays
from inference.engine.mining import MiningConfig, mine_latents

HOOK = "blocks.0.hook_resid_post"
N_SNIPPETS, D_IN = 40, 8


def _corpus(seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 13, size=N_SNIPPETS)
    lengths[[5, 17]] = 0
    snippet_index = np.repeat(np.arange(N_SNIPPETS), lengths)
    n = snippet_index.size
    x = (rng.exponential(size=(n, D_IN)) * (rng.random((n, D_IN)) < 0.3)).astype(np.float32)
    token_ids = rng.integers(0, 30, size=n)
    return x, snippet_index, token_ids, lengths


def _store(tmp_path, x, snippet_index, token_ids) -> ActivationStore:
    write_activation_arrays(
        tmp_path / "acts",
        activations={HOOK: x},
        snippet_index=snippet_index,
        n_snippets=N_SNIPPETS,
        token_ids=token_ids,
        vocabulary={i: f"w{i}" for i in range(30)},
        shard_tokens=50,
    )
    return ActivationStore.open(tmp_path / "acts", HOOK)


def _relu_encoder(W: np.ndarray):
    weight = torch.from_numpy(W)
    return lambda x: torch.relu(x @ weight)


def _brute_snippet_max(z, snippet_index):
    out = np.zeros((N_SNIPPETS, z.shape[1]), dtype=np.float32)
    for s in range(N_SNIPPETS):
        rows = snippet_index == s
        if rows.any():
            out[s] = np.maximum(z[rows].max(axis=0), 0)
    return out


def test_mining_finds_the_planted_top_snippets(tmp_path):
    x, snippet_index, token_ids, lengths = _corpus()
    planted = {}
    for latent in range(D_IN):  # latent j peaks far above everything else in snippet 3j + 1, token 0
        snippet = 3 * latent + 1
        row = int(np.flatnonzero(snippet_index == snippet)[0])
        x[row, latent] = 50.0 + latent
        planted[latent] = snippet
    store = _store(tmp_path, x, snippet_index, token_ids)
    result = mine_latents(
        store=store, encode=_relu_encoder(np.eye(D_IN, dtype=np.float32)), config=MiningConfig(n_top=3, batch_tokens=16)
    )
    for latent, summary in enumerate(result.latents):
        top = [r for r in summary.examples if r.kind == "top"]
        assert top[0].snippet_index == planted[latent]
        assert top[0].max_activation == pytest.approx(50.0 + latent)
        assert top[0].activations[0] == pytest.approx(50.0 + latent)
        assert top[0].peak_index == 0
        rows = snippet_index == planted[latent]
        assert top[0].tokens == [f"w{i}" for i in token_ids[rows]]
        np.testing.assert_allclose(top[0].activations, x[rows, latent])
        assert summary.max_activation == pytest.approx(50.0 + latent)


def test_mining_matches_brute_force(tmp_path):
    x, snippet_index, token_ids, lengths = _corpus(seed=1)
    W = np.random.default_rng(2).normal(size=(D_IN, 24)).astype(np.float32)
    store = _store(tmp_path, x, snippet_index, token_ids)
    config = MiningConfig(n_top=5, n_quantile_bins=4, n_per_quantile=2, n_negative=3, batch_tokens=20)
    result = mine_latents(store=store, encode=_relu_encoder(W), config=config)

    z = np.maximum(x @ W, 0)
    snippet_max = _brute_snippet_max(z, snippet_index)
    np.testing.assert_allclose(result.snippet_max, snippet_max, rtol=1e-5, atol=1e-6)
    assert result.snippet_max.shape == (N_SNIPPETS, 24) and len(result.latents) == 24
    for latent, summary in enumerate(result.latents):
        column = z[:, latent]
        active = column > 0
        assert summary.index == latent
        assert summary.density == pytest.approx(active.mean())
        assert summary.n_active_tokens == active.sum()
        assert summary.max_activation == pytest.approx(column.max(), rel=1e-5)
        if active.any():
            assert summary.mean_activation == pytest.approx(column[active].mean(), rel=1e-5)
        assert summary.n_active_snippets == (snippet_max[:, latent] > 0).sum()

        expected_top = np.argsort(-snippet_max[:, latent], kind="stable")[: min(5, summary.n_active_snippets)]
        top = [r for r in summary.examples if r.kind == "top"]
        assert [r.snippet_index for r in top] == expected_top.tolist()
        assert [r.rank_or_bin for r in top] == list(range(len(top)))
        for record in summary.examples:
            rows = snippet_index == record.snippet_index
            np.testing.assert_allclose(record.activations, column[rows], rtol=1e-5, atol=1e-6)
            assert len(record.tokens) == len(record.activations) == lengths[record.snippet_index]
            assert record.max_activation == pytest.approx(snippet_max[record.snippet_index, latent], abs=1e-6)

        negatives = [r for r in summary.examples if r.kind == "negative"]
        silent = [s for s in range(N_SNIPPETS) if lengths[s] and snippet_max[s, latent] == 0]
        assert len(negatives) == min(3, len(silent))
        assert all(r.snippet_index in silent and not any(r.activations) for r in negatives)


def test_mining_quantile_samples_fall_in_their_bins(tmp_path):
    x, snippet_index, token_ids, _ = _corpus(seed=3)
    W = np.abs(np.random.default_rng(4).normal(size=(D_IN, 6))).astype(np.float32)  # dense latents
    store = _store(tmp_path, x, snippet_index, token_ids)
    config = MiningConfig(n_top=3, n_quantile_bins=5, n_per_quantile=3, n_negative=0)
    result = mine_latents(store=store, encode=_relu_encoder(W), config=config)
    for summary in result.latents:
        edges = summary.quantile_edges
        assert len(edges) == 6 and edges == sorted(edges)
        activating = np.sort(result.snippet_max[:, summary.index][result.snippet_max[:, summary.index] > 0])
        assert edges[0] == pytest.approx(activating[0]) and edges[-1] == pytest.approx(activating[-1])
        quantile = [r for r in summary.examples if r.kind == "quantile"]
        assert quantile
        per_bin = {}
        for record in quantile:
            assert edges[record.rank_or_bin] <= record.max_activation <= edges[record.rank_or_bin + 1]
            per_bin.setdefault(record.rank_or_bin, []).append(record.snippet_index)
        assert all(len(set(snippets)) == len(snippets) <= 3 for snippets in per_bin.values())
        # equal-count bins: every bin of a latent active in ≥ 15 snippets gets its 3 samples
        if summary.n_active_snippets >= 15:
            assert sorted(per_bin) == list(range(5)) and all(len(v) == 3 for v in per_bin.values())


def test_mining_histogram_counts_every_active_token(tmp_path):
    x, snippet_index, token_ids, _ = _corpus(seed=5)
    x[0, 0] = 1e-8  # below the fine grid: clamped into the first bin, still counted
    store = _store(tmp_path, x, snippet_index, token_ids)
    result = mine_latents(
        store=store, encode=_relu_encoder(np.eye(D_IN, dtype=np.float32)), config=MiningConfig(n_histogram_bins=10)
    )
    for summary in result.latents:
        counts, edges = summary.histogram.counts, summary.histogram.edges
        assert sum(counts) == summary.n_active_tokens == (x[:, summary.index] > 0).sum()
        assert len(edges) == len(counts) + 1 <= 11
        assert np.all(np.diff(edges) > 0) and np.all(np.diff(np.log(edges)) == pytest.approx(np.diff(np.log(edges))[0]))
        assert edges[-1] >= summary.max_activation
        values = x[:, summary.index][x[:, summary.index] > 1e-6]
        inner = np.histogram(values, bins=edges)[0]
        assert inner.sum() == values.size  # every value on the grid lies inside the edges


def test_mining_dead_latent_and_window(tmp_path):
    x, snippet_index, token_ids, _ = _corpus(seed=6)
    W = np.eye(D_IN, dtype=np.float32)
    W[:, 2] = -1.0  # latent 2 never fires (x >= 0)
    store = _store(tmp_path, x, snippet_index, token_ids)
    result = mine_latents(store=store, encode=_relu_encoder(W), config=MiningConfig(window=1, n_negative=2))
    dead = result.latents[2]
    assert dead.density == 0 and dead.n_active_tokens == 0 and dead.max_activation == 0
    assert dead.histogram.counts == [] and dead.quantile_edges == []
    assert all(r.kind == "negative" for r in dead.examples) and len(dead.examples) == 2
    for record in result.latents[0].examples:
        assert len(record.tokens) <= 3
        if record.kind != "negative":
            assert record.activations[record.peak_index] == pytest.approx(record.max_activation)


def test_mining_result_does_not_depend_on_batch_size(tmp_path):
    x, snippet_index, token_ids, _ = _corpus(seed=7)
    store = _store(tmp_path, x, snippet_index, token_ids)
    encode = _relu_encoder(np.random.default_rng(8).normal(size=(D_IN, 16)).astype(np.float32))
    small = mine_latents(store=store, encode=encode, config=MiningConfig(batch_tokens=1))
    fractions = []
    large = mine_latents(
        store=store,
        encode=encode,
        config=MiningConfig(batch_tokens=10_000),
        progress=lambda fraction, message: fractions.append(fraction),
        snippet_max_path=tmp_path / "snippet_max.npy",
    )
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    np.testing.assert_allclose(np.load(tmp_path / "snippet_max.npy"), small.snippet_max, rtol=1e-5, atol=1e-6)
    for a, b in zip(small.latents, large.latents, strict=False):
        assert a.histogram == b.histogram and a.n_active_tokens == b.n_active_tokens
        assert [(r.snippet_index, r.kind, r.rank_or_bin) for r in a.examples] == [
            (r.snippet_index, r.kind, r.rank_or_bin) for r in b.examples
        ]
