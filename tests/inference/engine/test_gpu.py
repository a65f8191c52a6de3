"""GPU correctness: the sparse kernels and a short bf16 training run on CUDA (skipped without CUDA)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from inference.engine.devices import resolve_device
from inference.engine.saes import BatchTopKConfig, TopKConfig, build_sae
from inference.engine.training import TrainingConfig, train_sae

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on the lent GPU)"),
]


@pytest.mark.parametrize("cfg", [TopKConfig(d_in=64, d_sae=512, k=8), BatchTopKConfig(d_in=64, d_sae=512, k=8)])
def test_sparse_kernels_on_cuda_match_the_dense_reference_on_cpu(cfg):
    device = resolve_device("cuda")
    fast = build_sae(cfg, seed=3).double().to(device)
    reference = build_sae(dataclasses.replace(cfg, sparse_kernels=False), seed=3).double()
    reference.load_state_dict({name: tensor.cpu() for name, tensor in fast.state_dict().items()})
    x = torch.randn(128, cfg.d_in, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out_fast = fast.train()(x.to(device))
    out_reference = reference.train()(x)
    out_fast.loss.backward()
    out_reference.loss.backward()
    torch.testing.assert_close(out_fast.x_hat.cpu(), out_reference.x_hat)
    for (name, p_fast), (_, p_reference) in zip(fast.named_parameters(), reference.named_parameters(), strict=False):
        torch.testing.assert_close(p_fast.grad.cpu(), p_reference.grad, msg=f"gradient of {name}")


def test_bf16_training_on_cuda_reconstructs():
    rng = np.random.default_rng(0)
    activations = rng.standard_normal((20_000, 64)).astype(np.float32)
    result = train_sae(
        sae_cfg=TopKConfig(d_in=64, d_sae=256, k=16),
        train_cfg=TrainingConfig(steps=300, batch_size=1024, lr=1e-3, device="cuda"),
        activations=activations,
    )
    assert next(result.sae.parameters()).device.type == "cuda"
    assert result.metrics["fve"] > 0.3 and result.metrics["l0"] <= 16 + 1e-6
