"""Reconstruction metrics, dead latents, CE-loss recovered and monosemanticity."""

from __future__ import annotations

import math
from dataclasses import astuple

import numpy as np
import pytest
import torch

from inference.engine.metrics import (
    ReconstructionAccumulator,
    ce_loss_recovered,
    dead_fraction,
    monosemanticity,
    reconstruction_metrics,
)
from tests.inference.engine.tiny_hosts import TEXTS, tiny_bert, tiny_gpt2


def test_reconstruction_metrics_match_their_definitions():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, generator=generator) * 2 + 1
    x_hat = x + 0.3 * torch.randn(50, 8, generator=generator)
    z = torch.relu(torch.randn(50, 32, generator=generator))
    metrics = reconstruction_metrics(x=x, x_hat=x_hat, z=z)
    error = ((x - x_hat) ** 2).sum()
    variance = ((x - x.mean(dim=0)) ** 2).sum()
    assert metrics.mse == pytest.approx(float(((x - x_hat) ** 2).mean()), rel=1e-6)
    assert metrics.fvu == pytest.approx(float(error / variance), rel=1e-6)
    assert metrics.fve == pytest.approx(1 - metrics.fvu)
    assert metrics.l0 == pytest.approx(float((z != 0).sum(dim=1).float().mean()))
    assert metrics.n_tokens == 50

    perfect = reconstruction_metrics(x=x, x_hat=x.clone(), z=z)
    assert perfect.mse == 0 and perfect.fvu == 0 and perfect.fve == 1
    mean_only = reconstruction_metrics(x=x, x_hat=x.mean(dim=0).expand_as(x), z=z)
    assert mean_only.fvu == pytest.approx(1.0)


def test_reconstruction_accumulator_over_batches_equals_one_pass():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=generator) + 3
    x_hat = x * 0.9
    z = torch.relu(torch.randn(64, 10, generator=generator))
    accumulator = ReconstructionAccumulator()
    for start in range(0, 64, 10):
        accumulator.update(x=x[start : start + 10], x_hat=x_hat[start : start + 10], z=z[start : start + 10])
    assert astuple(accumulator.compute()) == pytest.approx(astuple(reconstruction_metrics(x=x, x_hat=x_hat, z=z)))
    with pytest.raises(ValueError, match="shapes"):
        accumulator.update(x=x, x_hat=x[:, :2], z=z)


def test_dead_fraction_counts_latents_that_never_fire():
    z_stream = [torch.tensor([[0.0, 1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]])]
    assert dead_fraction(iter(z_stream)) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        dead_fraction([])


@pytest.fixture(scope="module")
def gpt2():
    return tiny_gpt2()


@pytest.mark.parametrize("hook", ["blocks.1.hook_resid_post", "blocks.0.hook_attn_out", "blocks.2.hook_mlp_out"])
def test_ce_loss_recovered_is_one_for_identity_and_zero_for_zeros(gpt2, hook):
    common = dict(handle=gpt2, texts=TEXTS, hook_name=hook, batch_size=3, max_length=32, device="cpu")
    identity = ce_loss_recovered(reconstruct=lambda x: x, **common)
    assert identity.with_sae == pytest.approx(identity.clean, abs=1e-6)
    assert identity.recovered == pytest.approx(1.0, abs=1e-4)
    assert identity.zero_ablated != pytest.approx(identity.clean)
    zeros = ce_loss_recovered(reconstruct=torch.zeros_like, **common)
    assert zeros.with_sae == pytest.approx(zeros.zero_ablated, abs=1e-6)
    assert zeros.recovered == pytest.approx(0.0, abs=1e-4)
    assert zeros.clean == pytest.approx(identity.clean)
    # every real next token is scored: n tokens − 1 per text, BOS included as context
    assert identity.n_tokens == sum(len(text.split()) for text in TEXTS)


def test_ce_loss_recovered_partial_reconstruction_is_in_between(gpt2):
    half = ce_loss_recovered(
        handle=gpt2,
        texts=TEXTS,
        hook_name="blocks.1.hook_resid_post",
        reconstruct=lambda x: 0.5 * x,
        batch_size=4,
        max_length=32,
        device="cpu",
    )
    expected = (half.zero_ablated - half.with_sae) / (half.zero_ablated - half.clean)
    assert half.recovered == pytest.approx(expected)
    assert not math.isnan(half.recovered)


def test_ce_loss_recovered_refuses_encoder_models():
    with pytest.raises(ValueError, match="needs a causal language model"):
        ce_loss_recovered(
            handle=tiny_bert(),
            texts=TEXTS,
            hook_name="blocks.0.hook_resid_post",
            reconstruct=lambda x: x,
            batch_size=2,
            max_length=16,
            device="cpu",
        )


def test_ce_loss_reconstruct_with_wrong_shape_is_an_error_and_hooks_are_removed(gpt2):
    before = sum(len(m._forward_hooks) for m in gpt2.model.modules())
    with pytest.raises(ValueError, match="reconstruct returned shape"):
        ce_loss_recovered(
            handle=gpt2,
            texts=TEXTS,
            hook_name="blocks.1.hook_resid_post",
            reconstruct=lambda x: x[:, :3],
            batch_size=2,
            max_length=16,
            device="cpu",
        )
    assert sum(len(m._forward_hooks) for m in gpt2.model.modules()) == before


def test_monosemanticity_on_a_constructed_case():
    rng = np.random.default_rng(0)
    n = 400
    tags = (rng.random((n, 4)) < 0.3).astype(np.int8)
    names = ["pneumonia", "diabetes", "fracture", "sepsis"]
    snippet_max = np.stack(
        [
            tags[:, 1] * 2.5,  # exactly a scaled tag: r = 1 with diabetes
            tags[:, 0] + tags[:, 2] + tags[:, 3] + 0.1 * rng.random(n),  # mixes three tags
            np.zeros(n),  # never fires
            rng.random(n),  # noise
        ],
        axis=1,
    )
    result = monosemanticity(snippet_max=snippet_max, tags=tags, concept_names=names, chunk_latents=3)
    assert result.best_concept[0] == "diabetes" and result.best_r[0] == pytest.approx(1.0)
    assert result.best_concept[1] in {"pneumonia", "fracture", "sepsis"}
    assert result.entropy[0] < result.entropy[1] <= result.max_entropy == pytest.approx(2.0)
    assert result.best_concept[2] is None and math.isnan(result.entropy[2]) and math.isnan(result.best_r[2])
    assert (result.n_scored, result.n_skipped) == (3, 1)
    assert result.mean_entropy == pytest.approx(np.nanmean(result.entropy))

    # against the definition, computed directly
    r = np.array([[np.corrcoef(snippet_max[:, i], tags[:, j])[0, 1] for j in range(4)] for i in (0, 1, 3)])
    p = np.abs(r) / np.abs(r).sum(axis=1, keepdims=True)
    expected = -(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0)).sum(axis=1)
    np.testing.assert_allclose(result.entropy[[0, 1, 3]], expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.best_r[[0, 1, 3]], r.max(axis=1), rtol=1e-9)


def test_monosemanticity_constant_concepts_and_bad_shapes():
    tags = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]])
    result = monosemanticity(
        snippet_max=np.array([[0.0], [1.0], [0.0], [1.0]]), tags=tags, concept_names=["always", "b", "c"]
    )
    assert result.constant_concepts == ["always"] and result.best_concept == ["b"]
    assert result.entropy[0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="concept names"):
        monosemanticity(snippet_max=np.zeros((4, 1)), tags=tags, concept_names=["a", "b"])
    with pytest.raises(ValueError, match="n_snippets"):
        monosemanticity(snippet_max=np.zeros((3, 1)), tags=tags, concept_names=["a", "b", "c"])
