"""train_sae: configuration, schedule, seeded batches, metrics, progress, checkpoints and exact resume."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from inference.engine.devices import DeviceError, PhaseTimer, autocast_dtype, resolve_device
from inference.engine.saes import BatchTopKConfig, JumpReLUConfig, MatryoshkaConfig, ReLUConfig, TopKConfig, build_sae
from inference.engine.training import (
    CheckpointMismatchError,
    TrainingConfig,
    batch_rows,
    evaluate_sae,
    holdout_size,
    latest_checkpoint,
    learning_rate,
    sparsity_scale,
    train_sae,
)

D_IN = 12
CONFIGS = {
    "relu": ReLUConfig(d_in=D_IN, d_sae=32, l1_coefficient=0.5),
    "topk": TopKConfig(d_in=D_IN, d_sae=32, k=3),
    "batchtopk": BatchTopKConfig(d_in=D_IN, d_sae=32, k=3),
    "jumprelu": JumpReLUConfig(d_in=D_IN, d_sae=32, l0_coefficient=0.05, bandwidth=0.05, initial_threshold=0.1),
    "matryoshka": MatryoshkaConfig(d_in=D_IN, d_sae=32, k=3, widths=(8, 32)),
}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def activations() -> np.ndarray:
    rng = np.random.default_rng(5)
    atoms = rng.normal(size=(24, D_IN))
    codes = (rng.random((3000, 24)) < 0.1) * rng.exponential(size=(3000, 24))
    return (codes @ atoms + 2.0).astype(np.float32)


def small(**overrides) -> TrainingConfig:
    # dead_window_tokens is small so AuxK runs and its counters must survive a resume too.
    fields = dict(
        steps=60,
        batch_size=64,
        lr=3e-3,
        log_every=5,
        checkpoint_every=20,
        dead_window_tokens=640,
        warmup_steps=5,
        sparsity_warmup_steps=10,
        decay_start=0.5,
    )
    return TrainingConfig(**{**fields, **overrides})


class Killed(Exception):
    """Stands in for a worker killed mid-run."""


def kill_after(step: int, steps: int):
    def progress(fraction: float, message: str) -> None:
        if fraction >= step / steps and message.startswith("step"):
            raise Killed(message)

    return progress


# --- configuration and schedule ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(steps=0), "steps"),
        (dict(batch_size=-1), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(decay_start=1.5), "decay_start"),
        (dict(holdout_fraction=0.0), "holdout_fraction"),
        (dict(dtype="float16"), "dtype"),
        (dict(adam_betas=(0.9,)), "adam_betas"),
        (dict(seed=-1), "seed"),
        (dict(steps=True), "steps"),
    ],
)
def test_training_config_rejects_bad_fields(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**fields)


def test_learning_rate_warms_up_holds_and_decays_to_zero():
    cfg = TrainingConfig(steps=100, lr=1.0, warmup_steps=10, decay_start=0.8)
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 9) == pytest.approx(1.0)
    assert learning_rate(cfg, 50) == 1.0
    assert learning_rate(cfg, 90) == pytest.approx(0.5)
    assert learning_rate(cfg, 99) == pytest.approx(0.05)
    assert learning_rate(TrainingConfig(steps=10, lr=1.0, decay_start=1.0), 9) == 1.0


def test_sparsity_scale_warms_up():
    assert sparsity_scale(TrainingConfig(sparsity_warmup_steps=0), 0) == 1.0
    cfg = TrainingConfig(sparsity_warmup_steps=4)
    assert [sparsity_scale(cfg, step) for step in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_batches_are_a_function_of_seed_and_step_and_avoid_the_holdout():
    first = batch_rows(7, 3, 256, 1000)
    assert np.array_equal(first, batch_rows(7, 3, 256, 1000))
    assert not np.array_equal(first, batch_rows(7, 4, 256, 1000))
    assert not np.array_equal(first, batch_rows(8, 3, 256, 1000))
    assert first.min() >= 0 and first.max() < 1000 and np.all(np.diff(first) >= 0)
    assert holdout_size(3000, TrainingConfig()) == 150
    assert holdout_size(10**9, TrainingConfig(max_holdout_tokens=1000)) == 1000


def test_resolve_device_defaults_and_errors():
    assert resolve_device(None).type in ("cpu", "cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    assert autocast_dtype(torch.device("cpu")) == torch.float32
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device("cuda")


def test_phase_timer_charges_each_named_phase_of_a_step():
    sae = build_sae(CONFIGS["topk"]).train()
    with PhaseTimer(torch.device("cpu")) as timer:
        sae(torch.randn(8, D_IN), dead_latents=torch.ones(32, dtype=torch.bool))
        with pytest.raises(RuntimeError, match="already active"):
            PhaseTimer(torch.device("cpu")).__enter__()
    assert set(timer.seconds) == {"encode", "select", "decode", "auxk"}
    assert all(seconds > 0 for seconds in timer.seconds.values())
    sae(torch.randn(8, D_IN))  # no timer active any more: nothing is recorded
    assert set(timer.seconds) == {"encode", "select", "decode", "auxk"}


# --- a training run ------------------------------------------------------------------------------


def test_train_sae_reports_metrics_progress_and_history(activations):
    calls: list[tuple[float, str]] = []
    result = train_sae(
        sae_cfg=CONFIGS["topk"],
        train_cfg=small(),
        activations=activations,
        progress=lambda fraction, message: calls.append((fraction, message)),
    )
    for key in ("mse", "fve", "fvu", "l0", "dead_fraction", "mse_normalised", "dead_fraction_holdout"):
        assert isinstance(result.metrics[key], float) and math.isfinite(result.metrics[key]), key
    assert result.metrics["fve"] == pytest.approx(1 - result.metrics["fvu"])
    assert 0 < result.metrics["fve"] < 1 and result.metrics["l0"] <= 3
    assert result.metrics["holdout_tokens"] == 150
    assert result.steps_done == 60 and result.device_seconds > 0
    assert [entry["step"] for entry in result.history] == list(range(5, 61, 5))
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert calls[-1][1].startswith("done")
    assert not result.sae.training


def test_evaluate_sae_metrics_are_consistent(activations):
    result = train_sae(sae_cfg=CONFIGS["relu"], train_cfg=small(steps=20), activations=activations)
    metrics = evaluate_sae(
        sae=result.sae,
        normalisation=result.normalisation,
        activations=activations,
        rows=np.arange(2850, 3000),
        batch_size=64,
    )
    assert metrics == pytest.approx({k: v for k, v in result.metrics.items() if k in metrics})
    x = torch.from_numpy(activations[2850:])
    with torch.no_grad():
        x_hat = result.normalisation.invert(result.sae.decode(result.sae.encode(result.normalisation.apply(x))))
    assert metrics["mse"] == pytest.approx(float((x - x_hat).pow(2).mean()), rel=1e-4)
    fvu = float((x - x_hat).pow(2).sum() / (x - x.mean(dim=0)).pow(2).sum())
    assert metrics["fvu"] == pytest.approx(fvu, rel=1e-4)


def test_train_sae_reads_a_memmap_and_a_store_like_object(tmp_path, activations):
    path = tmp_path / "acts.npy"
    np.save(path, activations)
    from_memmap = train_sae(
        sae_cfg=CONFIGS["topk"], train_cfg=small(steps=10), activations=np.load(path, mmap_mode="r")
    )

    class Store:
        shape = activations.shape

        def __len__(self):
            return len(activations)

        def __getitem__(self, rows):
            return activations[rows].astype(np.float16).astype(np.float32)

    from_store = train_sae(sae_cfg=CONFIGS["topk"], train_cfg=small(steps=10), activations=Store())
    in_memory = train_sae(sae_cfg=CONFIGS["topk"], train_cfg=small(steps=10), activations=activations)
    assert torch.equal(from_memmap.sae.W_dec, in_memory.sae.W_dec)
    assert from_store.metrics["fve"] == pytest.approx(in_memory.metrics["fve"], abs=0.05)


def test_train_sae_rejects_mismatched_activations(activations):
    with pytest.raises(ValueError, match="d_in=16"):
        train_sae(sae_cfg=TopKConfig(d_in=16, d_sae=32, k=3), train_cfg=small(), activations=activations)


def test_same_seed_same_weights_other_seed_other_weights(activations):
    runs = [
        train_sae(sae_cfg=CONFIGS["topk"], train_cfg=small(steps=10, seed=seed), activations=activations)
        for seed in (1, 1, 2)
    ]
    assert torch.equal(runs[0].sae.W_enc, runs[1].sae.W_enc)
    assert not torch.equal(runs[0].sae.W_enc, runs[2].sae.W_enc)


# --- checkpoints and resume ----------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_killed_run_resumes_to_bit_identical_weights(tmp_path, activations, name):
    cfg = small()
    uninterrupted = train_sae(sae_cfg=CONFIGS[name], train_cfg=cfg, activations=activations)

    directory = tmp_path / "run"
    with pytest.raises(Killed):
        train_sae(
            sae_cfg=CONFIGS[name],
            train_cfg=cfg,
            activations=activations,
            checkpoint_dir=directory,
            progress=kill_after(45, cfg.steps),
        )
    assert latest_checkpoint(directory).name == "step-0000000040"
    resumed_messages: list[str] = []
    resumed = train_sae(
        sae_cfg=CONFIGS[name],
        train_cfg=cfg,
        activations=activations,
        checkpoint_dir=directory,
        progress=lambda fraction, message: resumed_messages.append(message),
    )

    assert resumed_messages[0] == "resumed at step 40/60"
    expected, actual = uninterrupted.sae.state_dict(), resumed.sae.state_dict()
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert resumed.metrics == uninterrupted.metrics
    assert resumed.history == uninterrupted.history
    assert resumed.steps_done == 60
    assert [path.name for path in directory.iterdir()] == ["step-0000000060"]


def test_finished_run_in_a_checkpoint_dir_returns_without_training(tmp_path, activations):
    first = train_sae(
        sae_cfg=CONFIGS["topk"], train_cfg=small(steps=20), activations=activations, checkpoint_dir=tmp_path
    )
    messages: list[str] = []
    again = train_sae(
        sae_cfg=CONFIGS["topk"],
        train_cfg=small(steps=20),
        activations=activations,
        checkpoint_dir=tmp_path,
        progress=lambda fraction, message: messages.append(message),
    )
    assert messages[0] == "resumed at step 20/20" and not any(m.startswith("step ") for m in messages)
    assert torch.equal(first.sae.W_dec, again.sae.W_dec) and again.metrics == first.metrics


def test_a_run_can_be_extended_from_its_checkpoint(tmp_path, activations):
    train_sae(
        sae_cfg=CONFIGS["topk"],
        train_cfg=small(steps=20, decay_start=1.0),
        activations=activations,
        checkpoint_dir=tmp_path,
    )
    longer = train_sae(
        sae_cfg=CONFIGS["topk"],
        train_cfg=small(steps=40, decay_start=1.0),
        activations=activations,
        checkpoint_dir=tmp_path,
    )
    straight = train_sae(sae_cfg=CONFIGS["topk"], train_cfg=small(steps=40, decay_start=1.0), activations=activations)
    assert longer.steps_done == 40
    assert torch.equal(longer.sae.W_dec, straight.sae.W_dec)


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, activations):
    train_sae(sae_cfg=CONFIGS["topk"], train_cfg=small(steps=20), activations=activations, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointMismatchError, match="training.seed"):
        train_sae(
            sae_cfg=CONFIGS["topk"], train_cfg=small(steps=20, seed=9), activations=activations, checkpoint_dir=tmp_path
        )
    with pytest.raises(CheckpointMismatchError, match="SAE config"):
        train_sae(
            sae_cfg=TopKConfig(d_in=D_IN, d_sae=32, k=4),
            train_cfg=small(steps=20),
            activations=activations,
            checkpoint_dir=tmp_path,
        )


def test_checkpoint_files_are_safetensors_json_and_plain_tensors(tmp_path, activations):
    train_sae(sae_cfg=CONFIGS["jumprelu"], train_cfg=small(steps=20), activations=activations, checkpoint_dir=tmp_path)
    checkpoint = latest_checkpoint(tmp_path)
    assert sorted(path.name for path in checkpoint.iterdir()) == ["optimizer.pt", "state.json", "state.safetensors"]
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["step"] == 20 and state["fingerprint"]["sae"]["architecture"] == "jumprelu"
    # The optimiser state loads under weights_only=True: no arbitrary unpickling.
    optimiser = torch.load(checkpoint / "optimizer.pt", weights_only=True)
    assert set(optimiser) == {"state", "param_groups"}


def test_incomplete_checkpoint_directories_are_ignored(tmp_path, activations):
    (tmp_path / "step-0000000010").mkdir()  # no state.json: a copy that never finished
    (tmp_path / ".tmp-step-0000000020-1").mkdir()
    assert latest_checkpoint(tmp_path) is None
    result = train_sae(
        sae_cfg=CONFIGS["topk"], train_cfg=small(steps=20), activations=activations, checkpoint_dir=tmp_path
    )
    assert result.steps_done == 20
    assert sorted(path.name for path in tmp_path.iterdir()) == ["step-0000000020"]
