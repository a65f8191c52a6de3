"""SAE architectures, their configs, the sparse kernels against the dense reference, and normalisation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from inference.engine import kernels
from inference.engine.kernels import gather_encode, preactivations, sparse_decode, topk_codes
from inference.engine.saes import (
    ARCHITECTURES,
    BatchTopKConfig,
    BatchTopKSAE,
    JumpReLUConfig,
    MatryoshkaConfig,
    Normalisation,
    NormalisedSAE,
    ReLUConfig,
    TopKConfig,
    build_sae,
    config_from_dict,
    fold_normalisation,
)
from inference.engine.training import TrainingConfig, train_sae

D_IN, D_SAE = 16, 64
CONFIGS = {
    "relu": ReLUConfig(d_in=D_IN, d_sae=D_SAE, l1_coefficient=0.5),
    "topk": TopKConfig(d_in=D_IN, d_sae=D_SAE, k=4),
    "batchtopk": BatchTopKConfig(d_in=D_IN, d_sae=D_SAE, k=4),
    "jumprelu": JumpReLUConfig(d_in=D_IN, d_sae=D_SAE, l0_coefficient=0.05, bandwidth=0.05, initial_threshold=0.1),
    "matryoshka": MatryoshkaConfig(d_in=D_IN, d_sae=D_SAE, k=4, widths=(8, 24, D_SAE)),
}
SPARSE_KERNEL_CONFIGS = ["topk", "batchtopk", "matryoshka"]


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny matmuls on a shared 2-core box: OpenMP's second thread only adds barrier waits.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sparse_data(n: int = 4000, d_in: int = D_IN, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    atoms = rng.normal(size=(48, d_in))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = (rng.random((n, 48)) < 0.06) * rng.uniform(0.5, 2.0, size=(n, 48))
    return (codes @ atoms + 0.1 * rng.normal(size=(n, d_in)) + 1.0).astype(np.float32)


def quick_training(**overrides) -> TrainingConfig:
    fields = dict(steps=300, batch_size=128, lr=3e-3, log_every=10, dead_window_tokens=5000, decay_start=0.9)
    return TrainingConfig(**{**fields, **overrides})


@pytest.fixture(scope="module")
def trained():
    """Each architecture trained once on the same data (shared by the tests below)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data = sparse_data()
    results = {
        name: train_sae(sae_cfg=cfg, train_cfg=quick_training(), activations=data) for name, cfg in CONFIGS.items()
    }
    torch.set_num_threads(threads)
    return data, results


# --- configs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_config_round_trips_through_dict(name):
    cfg = CONFIGS[name]
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["architecture"] == name


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ReLUConfig(d_in=0, d_sae=8), "d_in"),
        (lambda: ReLUConfig(d_in=8, d_sae=8, l1_coefficient=-1.0), "l1_coefficient"),
        (lambda: TopKConfig(d_in=8, d_sae=8, k=9), "k must"),
        (lambda: TopKConfig(d_in=8, d_sae=8, k=True), "k must"),
        (lambda: TopKConfig(d_in=8, d_sae=64, aux_k=0), "aux_k"),
        (lambda: BatchTopKConfig(d_in=8, d_sae=64, threshold_momentum=1.0), "threshold_momentum"),
        (lambda: JumpReLUConfig(d_in=8, d_sae=8, bandwidth=0.0), "bandwidth"),
        (lambda: JumpReLUConfig(d_in=8, d_sae=8, initial_threshold=-1.0), "initial_threshold"),
        (lambda: MatryoshkaConfig(d_in=8, d_sae=64, k=4, widths=(8, 4, 64)), "strictly increasing"),
        (lambda: MatryoshkaConfig(d_in=8, d_sae=64, k=4, widths=(4, 8)), "last width"),
    ],
)
def test_config_rejects_bad_fields(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_config_from_dict_rejects_unknown_architecture_and_fields():
    with pytest.raises(ValueError, match="unknown architecture"):
        config_from_dict({"architecture": "gated", "d_in": 4, "d_sae": 8})
    with pytest.raises(ValueError, match="bad topk config"):
        config_from_dict({"architecture": "topk", "d_in": 4, "d_sae": 8, "colour": "blue"})


def test_matryoshka_default_widths_nest_up_to_d_sae():
    assert MatryoshkaConfig(d_in=8, d_sae=64).widths == (4, 16, 64)


# --- construction and the interface ---------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_build_sae_ties_encoder_to_unit_norm_decoder(name):
    sae = build_sae(CONFIGS[name], seed=3)
    assert sae.architecture == name and isinstance(sae, ARCHITECTURES[name])
    assert sae.W_enc.shape == (D_IN, D_SAE) and sae.W_dec.shape == (D_SAE, D_IN)
    assert sae.b_enc.shape == (D_SAE,) and sae.b_dec.shape == (D_IN,)
    assert torch.equal(sae.W_enc, sae.W_dec.t())
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    assert torch.equal(build_sae(CONFIGS[name], seed=3).W_dec, sae.W_dec)
    assert not torch.equal(build_sae(CONFIGS[name], seed=4).W_dec, sae.W_dec)


@pytest.mark.parametrize("name", CONFIGS)
def test_encode_decode_forward_shapes(name):
    sae = build_sae(CONFIGS[name]).eval()
    x = torch.randn(10, D_IN)
    z = sae.encode(x)
    assert z.shape == (10, D_SAE) and bool((z >= 0).all())
    assert sae.decode(z).shape == (10, D_IN)
    out = sae.train()(x)
    assert out.x_hat.shape == (10, D_IN) and out.z.shape == (10, D_SAE)
    assert "mse" in out.losses and out.loss.ndim == 0


def test_constrain_decoder_gradient_removes_the_parallel_component():
    sae = build_sae(CONFIGS["relu"])
    sae.W_dec.grad = torch.randn(D_SAE, D_IN)
    sae.constrain_decoder_gradient()
    parallel = (sae.W_dec.grad * sae.W_dec).sum(dim=1)
    torch.testing.assert_close(parallel, torch.zeros(D_SAE), atol=1e-5, rtol=0)


# --- training behaviour (shared runs) ------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_each_architecture_loss_falls(trained, name):
    history = trained[1][name].history
    # (Matryoshka's loss also sums its smallest prefixes, which cannot fall as far.)
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    assert history[-1]["mse"] < 0.6 * history[0]["mse"]
    assert trained[1][name].metrics["fve"] > 0.5


@pytest.mark.parametrize("name", CONFIGS)
def test_decoder_rows_stay_unit_norm_after_training(trained, name):
    norms = trained[1][name].sae.W_dec.detach().norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(D_SAE), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["topk", "matryoshka"])
def test_topk_keeps_at_most_k_active_per_token(trained, name):
    data, results = trained
    result = results[name]
    with torch.no_grad():
        z = result.sae.encode(result.normalisation.apply(torch.from_numpy(data[:500])))
    assert int((z > 0).sum(dim=1).max()) <= CONFIGS[name].k
    assert result.metrics["l0"] <= CONFIGS[name].k


def test_batchtopk_keeps_batch_times_k_in_training_and_thresholds_at_inference(trained):
    data, results = trained
    result = results["batchtopk"]
    sae: BatchTopKSAE = result.sae
    assert float(sae.threshold) > 0
    x = result.normalisation.apply(torch.from_numpy(data[:256]))
    with torch.no_grad():
        train_out = sae.train()(x)
        z = sae.eval().encode(x)
    assert int((train_out.z > 0).sum()) <= 256 * CONFIGS["batchtopk"].k
    active = z[z > 0]
    assert bool((active > sae.threshold).all())
    # The threshold is calibrated so that inference keeps about k per token on average.
    assert 0.5 * CONFIGS["batchtopk"].k < result.metrics["l0"] < 2 * CONFIGS["batchtopk"].k


def test_jumprelu_thresholds_stay_positive_and_move(trained):
    sae = trained[1]["jumprelu"].sae
    threshold = sae.threshold
    assert bool((threshold > 0).all())
    torch.testing.assert_close(threshold, sae.log_threshold.detach().exp())
    assert not torch.allclose(threshold, torch.full_like(threshold, CONFIGS["jumprelu"].initial_threshold))


def test_jumprelu_thresholds_stay_positive_under_a_strong_l0_penalty(trained):
    cfg = dataclasses.replace(CONFIGS["jumprelu"], l0_coefficient=5.0)
    result = train_sae(sae_cfg=cfg, train_cfg=quick_training(), activations=trained[0])
    weak = trained[1]["jumprelu"]
    assert bool((result.sae.threshold > 0).all())
    assert float(result.sae.threshold.mean()) > float(weak.sae.threshold.mean())
    assert result.metrics["l0"] < weak.metrics["l0"]


def test_jumprelu_pseudo_gradient_of_the_threshold():
    cfg = JumpReLUConfig(d_in=2, d_sae=3, l0_coefficient=1.0, bandwidth=0.5, initial_threshold=1.0)
    sae = build_sae(cfg).train()
    pre = torch.tensor([[0.9, 1.1, 3.0]])
    with torch.no_grad():
        sae.W_enc.zero_()
        sae.b_enc.copy_(pre[0])
    out = sae(torch.zeros(1, 2), sparsity_scale=1.0)
    out.losses["l0"].backward(retain_graph=False)
    # d L0 / d theta = -(1/eps) K((pre - theta)/eps): the rectangle covers |pre - theta| < eps/2,
    # and theta = exp(log theta) multiplies by theta = 1 on the way to log theta.
    torch.testing.assert_close(sae.log_threshold.grad, torch.tensor([-2.0, -2.0, 0.0]))


def test_matryoshka_prefixes_each_reconstruct_and_improve_with_width(trained):
    metrics = trained[1]["matryoshka"].metrics
    fves = [metrics[f"fve_prefix_{width}"] for width in CONFIGS["matryoshka"].widths]
    assert all(fve > 0 for fve in fves)
    assert fves == sorted(fves) and fves[0] < fves[-1]
    assert math.isclose(fves[-1], metrics["fve"], rel_tol=1e-6)


# --- the sparse fast path against the dense reference --------------------------------------------


def _pair(name: str, seed: int = 1):
    cfg = CONFIGS[name]
    fast = build_sae(cfg, seed=seed).double()
    reference = build_sae(dataclasses.replace(cfg, sparse_kernels=False), seed=seed).double()
    with torch.no_grad():
        fast.b_enc.normal_(std=0.5)
        fast.b_dec.normal_(std=0.5)
    reference.load_state_dict(fast.state_dict())
    return fast, reference


@pytest.mark.parametrize("name", SPARSE_KERNEL_CONFIGS)
@pytest.mark.parametrize("with_dead", [False, True])
def test_sparse_kernels_match_dense_reference_outputs_and_gradients(name, with_dead):
    fast, reference = _pair(name)
    x = torch.randn(32, D_IN, dtype=torch.float64)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[::3] = True
    outputs = []
    for sae in (fast, reference):
        out = sae.train()(x, dead_latents=dead if with_dead else None)
        out.loss.backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0].x_hat, outputs[1].x_hat)
    assert torch.equal(outputs[0].z, outputs[1].z)
    assert outputs[0].losses.keys() == outputs[1].losses.keys() and ("auxk" in outputs[0].losses) == with_dead
    for key in outputs[0].losses:
        torch.testing.assert_close(outputs[0].losses[key], outputs[1].losses[key])
    for (name_fast, p_fast), (_, p_reference) in zip(
        fast.named_parameters(), reference.named_parameters(), strict=False
    ):
        torch.testing.assert_close(p_fast.grad, p_reference.grad, msg=f"gradient of {name_fast}")


def test_sparse_encoder_gradient_touches_only_selected_columns():
    sae = build_sae(CONFIGS["topk"]).train()
    x = torch.randn(3, D_IN)
    out = sae(x)
    out.loss.backward()
    selected = torch.zeros(D_SAE, dtype=torch.bool)
    selected[out.codes.col] = True
    assert bool((sae.W_enc.grad[:, ~selected] == 0).all())
    assert bool((sae.W_dec.grad[~selected] == 0).all())


def test_kernel_fallbacks_match_the_sparse_kernels(monkeypatch):
    fast, _ = _pair("topk")
    x = torch.randn(16, D_IN, dtype=torch.float64)
    dead = torch.ones(D_SAE, dtype=torch.bool)
    gradients = []
    for unsupported in (set(), {("cpu", "transposed_product"), ("cpu", "sampled_row_products")}):
        monkeypatch.setattr(kernels, "_UNSUPPORTED", set(unsupported))
        fast.zero_grad()
        fast.train()(x, dead_latents=dead).loss.backward()
        gradients.append({name: p.grad.clone() for name, p in fast.named_parameters()})
    for name in gradients[0]:
        torch.testing.assert_close(gradients[0][name], gradients[1][name], msg=name)


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.randn(256, 512),
        lambda: torch.relu(torch.randn(256, 512) - 2.5),  # few positives: the sample threshold is 0, full top-k runs
        lambda: torch.randn(256, 512).round(decimals=1),  # many ties
    ],
    ids=["random", "mostly-zero", "ties"],
)
def test_batch_topk_selection_is_exact(make):
    torch.manual_seed(0)
    acts = make()
    k_total = 256 * 4
    codes = kernels.batch_topk_codes(acts, k_total)
    expected = torch.topk(acts.reshape(-1), k_total).values
    assert codes.values.numel() == k_total
    torch.testing.assert_close(codes.values.sort().values, expected.sort().values, rtol=0, atol=0)
    assert torch.equal(codes.gather(acts), codes.values)  # pattern and values agree
    assert bool((codes.row_index().diff() >= 0).all())  # CSR rows in order


def test_kernels_pass_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    b_dec = torch.randn(6, dtype=torch.float64, requires_grad=True)
    W_enc = torch.randn(6, 12, dtype=torch.float64, requires_grad=True)
    b_enc = torch.randn(12, dtype=torch.float64, requires_grad=True)
    W_dec = torch.randn(12, 6, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        pattern = topk_codes(preactivations(x, b_dec, W_enc, b_enc), 3)

    def encode_then_decode(x, b_dec, W_enc, b_enc, W_dec):
        pre = preactivations(x, b_dec, W_enc, b_enc)
        values = gather_encode(x, b_dec, W_enc, b_enc, pre, pattern)
        return sparse_decode(pattern.with_values(values), W_dec)

    assert torch.autograd.gradcheck(encode_then_decode, (x, b_dec, W_enc, b_enc, W_dec))


# --- normalisation --------------------------------------------------------------------------------


def test_normalisation_fit_gives_sqrt_d_mean_norm_and_inverts():
    x = torch.from_numpy(sparse_data(2000)) * 7 + 3
    normalisation = Normalisation.fit(x)
    normalised = normalisation.apply(x)
    assert math.isclose(normalised.norm(dim=1).mean().item(), math.sqrt(D_IN), rel_tol=1e-4)
    torch.testing.assert_close(normalised.mean(dim=0), torch.zeros(D_IN), atol=1e-4, rtol=0)
    torch.testing.assert_close(normalisation.invert(normalised), x, atol=1e-4, rtol=1e-5)
    assert Normalisation.fit(x.numpy()).scale == pytest.approx(normalisation.scale)


def test_normalisation_rejects_bad_inputs():
    with pytest.raises(ValueError, match="scale"):
        Normalisation(mean=torch.zeros(3), scale=0.0)
    with pytest.raises(ValueError, match="spread"):
        Normalisation.fit(torch.ones(10, 3))
    assert Normalisation.identity(3).is_identity()


@pytest.mark.parametrize("name", CONFIGS)
def test_normalised_sae_and_folded_sae_agree_on_raw_activations(name):
    sae = build_sae(CONFIGS[name], seed=2).eval()
    with torch.no_grad():
        sae.b_dec.normal_()
    raw = torch.from_numpy(sparse_data(64)) * 5
    normalisation = Normalisation.fit(raw)
    wrapped = NormalisedSAE(sae, normalisation)
    with torch.no_grad():
        torch.testing.assert_close(wrapped.encode(raw), sae.encode(normalisation.apply(raw)))
        folded = fold_normalisation(sae, normalisation)
        torch.testing.assert_close(folded.encode(raw), wrapped.encode(raw), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(folded.decode(folded.encode(raw)), wrapped(raw), atol=1e-4, rtol=1e-4)
