"""The activation shard store: layout, random access across shards, ordered iteration, statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inference.engine.activations import (
    MANIFEST_FILE,
    ActivationManifest,
    ActivationStore,
    mean_and_scale,
    snippet_max_activations,
    write_activation_arrays,
)

HOOK = "blocks.0.hook_resid_post"


def _corpus(seed: int = 0, n_snippets: int = 12, d_in: int = 6):
    """Rows of a corpus whose snippet 3 and the last one have no kept tokens."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 9, size=n_snippets)
    lengths[3] = 0
    lengths[-1] = 0
    snippet_index = np.repeat(np.arange(n_snippets), lengths)
    x = rng.normal(size=(snippet_index.size, d_in)).astype(np.float32) * 3 + 1
    token_ids = rng.integers(0, 20, size=snippet_index.size)
    return x, snippet_index, token_ids, lengths


@pytest.fixture
def store(tmp_path):
    x, snippet_index, token_ids, _ = _corpus()
    write_activation_arrays(
        tmp_path / "acts",
        activations={HOOK: x},
        snippet_index=snippet_index,
        n_snippets=12,
        token_ids=token_ids,
        vocabulary={i: f"t{i}" for i in range(20)},
        shard_tokens=7,
    )
    return ActivationStore.open(tmp_path / "acts", HOOK)


def test_store_round_trips_across_shards(store):
    x, snippet_index, token_ids, _ = _corpus()
    assert len(store) == x.shape[0] and store.shape == x.shape and store.d_in == 6
    assert len(store.manifest.shards) == -(-x.shape[0] // 7)
    assert [s.n_tokens for s in store.manifest.shards][:-1] == [7] * (len(store.manifest.shards) - 1)
    np.testing.assert_array_equal(store[:], x)
    np.testing.assert_array_equal(store.token_ids, token_ids)
    np.testing.assert_array_equal(store.token_index[:, 0], snippet_index)
    # positions restart in every snippet
    assert all(
        store.positions[store.snippet_offsets[i]] == 0 for i in range(12) if store.snippet_offsets[i] < len(store)
    )


def test_store_fancy_indexing_gathers_across_shards(store):
    x, *_ = _corpus()
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(store), size=40)  # unsorted, repeated, every shard
    got = store[idx]
    assert got.dtype == np.float32 and got.shape == (40, 6)
    np.testing.assert_array_equal(got, x[idx])
    np.testing.assert_array_equal(store[-3], x[-3])
    np.testing.assert_array_equal(store[5:19], x[5:19])
    np.testing.assert_array_equal(store[2:30:4], x[2:30:4])
    mask = np.zeros(len(store), dtype=bool)
    mask[[0, 8, 9, 20]] = True
    np.testing.assert_array_equal(store[mask], x[mask])
    with pytest.raises(IndexError):
        store[np.array([len(store)])]


def test_store_iter_snippets_in_order_with_empty_snippets(store):
    x, snippet_index, token_ids, lengths = _corpus()
    seen = list(store.iter_snippets(batch_tokens=5))
    assert [s.snippet_index for s in seen] == list(range(12))
    for snippet in seen:
        rows = snippet_index == snippet.snippet_index
        assert len(snippet.token_strings) == lengths[snippet.snippet_index]
        np.testing.assert_array_equal(snippet.activations, x[rows])
        np.testing.assert_array_equal(snippet.token_ids, token_ids[rows])
        assert snippet.token_strings == [f"t{i}" for i in token_ids[rows]]


@pytest.mark.parametrize("batch_tokens", [1, 5, 16, 1000])
def test_store_iter_batches_keeps_snippets_whole(store, batch_tokens):
    x, snippet_index, *_ = _corpus()
    stops = []
    covered = []
    for batch in store.iter_batches(batch_tokens=batch_tokens):
        covered.append(batch.activations)
        stops.append(batch.stop)
        assert batch.stop == len(store) or snippet_index[batch.stop] != snippet_index[batch.stop - 1]
    np.testing.assert_array_equal(np.concatenate(covered), x)
    assert stops[-1] == len(store)


def test_store_float16_and_refusals(tmp_path):
    x, snippet_index, *_ = _corpus()
    write_activation_arrays(
        tmp_path / "half", activations={HOOK: x}, snippet_index=snippet_index, n_snippets=12, dtype="float16"
    )
    store = ActivationStore.open(tmp_path / "half", HOOK)
    assert np.load(tmp_path / "half" / HOOK / "shard_00000.npy", mmap_mode="r").dtype == np.float16
    np.testing.assert_allclose(store[:], x, rtol=1e-3, atol=1e-3)
    with pytest.raises(KeyError, match="holds no hook"):
        ActivationStore.open(tmp_path / "half", "blocks.1.hook_mlp_out")
    (tmp_path / "half" / MANIFEST_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="not a finished activation capture"):
        ActivationStore.open(tmp_path / "half", HOOK)


def test_manifest_json_is_self_describing(store):
    data = json.loads((store.directory / MANIFEST_FILE).read_text())
    assert data["format"] == "concord-activations" and data["version"] == 1
    assert data["hooks"] == {HOOK: 6}
    assert data["token_columns"] == ["snippet_index", "position", "token_id", "char_start", "char_end"]
    assert ActivationManifest.load(store.directory).shards == store.manifest.shards


def test_mean_and_scale_matches_numpy(store):
    x, *_ = _corpus()
    stats = mean_and_scale(store, batch_tokens=5)
    np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=1e-5, atol=1e-6)
    normalised = stats.apply(x.astype(np.float64))
    assert np.linalg.norm(normalised, axis=1).mean() == pytest.approx(np.sqrt(6), rel=1e-5)
    assert stats.n_tokens == len(store)


def test_snippet_max_activations_for_raw_neurons(store):
    x, snippet_index, _, lengths = _corpus()
    got = snippet_max_activations(store, batch_tokens=4)
    assert got.shape == (12, 6)
    for snippet in range(12):
        if lengths[snippet]:
            np.testing.assert_array_equal(got[snippet], x[snippet_index == snippet].max(axis=0))
        else:
            assert not got[snippet].any()
