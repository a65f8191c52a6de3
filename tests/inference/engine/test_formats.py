"""SAELens-format directories: exact round trips, plain SAELens files, and clear errors for broken ones."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from inference.engine.formats import (
    CFG_FILENAME,
    SAELENS_METADATA_DEFAULTS,
    WEIGHTS_FILENAME,
    SAEFormatError,
    UnfoldedExportWarning,
    export_sae_directory,
    load_sae,
    save_sae,
)
from inference.engine.saes import (
    BatchTopKConfig,
    JumpReLUConfig,
    JumpReLUSAE,
    MatryoshkaConfig,
    Normalisation,
    NormalisedSAE,
    ReLUConfig,
    ReLUSAE,
    TopKConfig,
    TopKSAE,
    build_sae,
)

D_IN, D_SAE = 8, 24
CONFIGS = {
    "relu": ReLUConfig(d_in=D_IN, d_sae=D_SAE, l1_coefficient=2.5),
    "topk": TopKConfig(d_in=D_IN, d_sae=D_SAE, k=3),
    "batchtopk": BatchTopKConfig(d_in=D_IN, d_sae=D_SAE, k=3),
    "jumprelu": JumpReLUConfig(d_in=D_IN, d_sae=D_SAE, bandwidth=0.01),
    "matryoshka": MatryoshkaConfig(d_in=D_IN, d_sae=D_SAE, k=3, widths=(6, 12, D_SAE)),
}
SAELENS_NAME = {
    "relu": "standard",
    "topk": "topk",
    "batchtopk": "jumprelu",
    "jumprelu": "jumprelu",
    "matryoshka": "topk",
}
METADATA = {
    "model_name": "emilyalsentzer/Bio_ClinicalBERT",
    "hook_name": "blocks.6.hook_resid_post",
    "training_metrics": {"fve": 0.8125, "l0": 31.5},
}


def trained_looking(name: str, seed: int = 0):
    """An SAE whose every tensor differs from its initialisation, and a non-trivial normalisation."""
    generator = torch.Generator().manual_seed(seed)
    sae = build_sae(CONFIGS[name], seed=seed)
    with torch.no_grad():
        for parameter in sae.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
        sae.after_step()
        if name == "batchtopk":
            sae.threshold.fill_(0.4375)
    normalisation = Normalisation(mean=torch.randn(D_IN, generator=generator), scale=0.3141592653589793)
    return sae.eval(), normalisation


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("name", CONFIGS)
def test_round_trip_is_bit_identical_with_the_same_outputs(tmp_path, name):
    sae, normalisation = trained_looking(name)
    save_sae(sae=sae, normalisation=normalisation, directory=tmp_path, metadata=METADATA)
    loaded = load_sae(tmp_path)

    assert type(loaded.sae) is type(sae) and loaded.sae.cfg == sae.cfg
    assert same_tensors(loaded.sae.export_tensors(), sae.export_tensors())
    # (log_threshold is jumprelu's training parametrisation, rebuilt as log(threshold); the file
    # stores threshold itself, which is what inference reads.)
    state, loaded_state = sae.state_dict(), loaded.sae.state_dict()
    state.pop("log_threshold", None), loaded_state.pop("log_threshold", None)
    assert same_tensors(loaded_state, state)
    assert torch.equal(loaded.normalisation.mean, normalisation.mean)
    assert loaded.normalisation.scale == normalisation.scale
    assert {k: loaded.metadata[k] for k in METADATA} == METADATA
    x = torch.randn(50, D_IN) * 3
    with torch.no_grad():
        assert torch.equal(loaded.sae.encode(x), sae.encode(x))
        assert torch.equal(loaded.normalised()(x), loaded.normalised().decode(loaded.normalised().encode(x)))
    # Writing the loaded SAE again gives the same bytes: nothing drifts across generations.
    save_sae(sae=loaded.sae, normalisation=loaded.normalisation, directory=tmp_path / "again", metadata=METADATA)
    assert (tmp_path / "again" / WEIGHTS_FILENAME).read_bytes() == (tmp_path / WEIGHTS_FILENAME).read_bytes()
    assert (tmp_path / "again" / CFG_FILENAME).read_text() == (tmp_path / CFG_FILENAME).read_text()


@pytest.mark.parametrize("name", CONFIGS)
def test_saved_directory_has_saelens_keys_and_tensor_names(tmp_path, name):
    sae, normalisation = trained_looking(name)
    save_sae(sae=sae, normalisation=normalisation, directory=tmp_path, metadata=METADATA)
    cfg = json.loads((tmp_path / CFG_FILENAME).read_text())
    assert cfg["architecture"] == SAELENS_NAME[name]
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"], cfg["device"]) == (D_IN, D_SAE, "float32", "cpu")
    assert cfg["apply_b_dec_to_input"] is True and cfg["normalize_activations"] == "none"
    assert cfg["metadata"]["model_name"] == METADATA["model_name"]
    assert cfg["metadata"]["hook_name"] == METADATA["hook_name"]
    concord = cfg["metadata"]["concord"]
    assert concord["architecture"] == name and concord["normalisation"]["scale"] == normalisation.scale
    assert ("k" in cfg) == (SAELENS_NAME[name] == "topk")
    with safe_open(str(tmp_path / WEIGHTS_FILENAME), framework="pt") as handle:
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    expected = {"W_enc": (D_IN, D_SAE), "b_enc": (D_SAE,), "W_dec": (D_SAE, D_IN), "b_dec": (D_IN,)}
    if SAELENS_NAME[name] == "jumprelu":
        expected["threshold"] = (D_SAE,)
    assert shapes == expected
    if name == "matryoshka":
        assert concord["matryoshka_widths"] == [6, 12, D_SAE] and cfg["k"] == 3
    if name == "batchtopk":
        assert concord["global_threshold"] == 0.4375


def test_batchtopk_without_concord_metadata_reads_as_the_equivalent_jumprelu(tmp_path):
    sae, normalisation = trained_looking("batchtopk")
    save_sae(sae=sae, normalisation=Normalisation.identity(D_IN), directory=tmp_path)
    cfg = json.loads((tmp_path / CFG_FILENAME).read_text())
    del cfg["metadata"]["concord"]
    (tmp_path / CFG_FILENAME).write_text(json.dumps(cfg))
    as_jumprelu = load_sae(tmp_path).sae
    assert isinstance(as_jumprelu, JumpReLUSAE)
    x = torch.randn(40, D_IN) * 2
    with torch.no_grad():
        assert torch.equal(as_jumprelu.encode(x), sae.encode(x))


def write_saelens_directory(directory, architecture: str, tensors: dict[str, torch.Tensor], **extra) -> None:
    """What SAELens v6's `save_model` writes: its own key names, no Concord metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = {
        "d_in": D_IN,
        "d_sae": D_SAE,
        "dtype": "float32",
        "device": "cuda",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "architecture": architecture,
        "metadata": {
            "sae_lens_version": "6.12.1",
            "sae_lens_training_version": "6.12.1",
            "model_name": "gpt2",
            "hook_name": "blocks.8.hook_resid_pre",
            "hook_head_index": None,
            "prepend_bos": True,
            "context_size": 128,
        },
        **extra,
    }
    (directory / CFG_FILENAME).write_text(json.dumps(cfg))
    save_file(tensors, directory / WEIGHTS_FILENAME)


def random_tensors(threshold: bool = False) -> dict[str, torch.Tensor]:
    tensors = {
        "W_enc": torch.randn(D_IN, D_SAE),
        "b_enc": torch.randn(D_SAE),
        "W_dec": torch.randn(D_SAE, D_IN),
        "b_dec": torch.randn(D_IN),
    }
    if threshold:
        tensors["threshold"] = torch.rand(D_SAE)
    return tensors


@pytest.mark.parametrize(
    "architecture, expected_class, extra",
    [
        ("standard", ReLUSAE, {}),
        ("topk", TopKSAE, {"k": 5}),
        ("jumprelu", JumpReLUSAE, {}),
    ],
)
def test_a_directory_written_with_saelens_key_names_loads(tmp_path, architecture, expected_class, extra):
    tensors = random_tensors(threshold=architecture == "jumprelu")
    write_saelens_directory(tmp_path, architecture, tensors, **extra)
    loaded = load_sae(tmp_path)
    assert type(loaded.sae) is expected_class
    assert loaded.normalisation.is_identity()
    assert loaded.metadata["hook_name"] == "blocks.8.hook_resid_pre"
    assert same_tensors(loaded.sae.export_tensors(), tensors)
    x = torch.randn(6, D_IN)
    pre = (x - tensors["b_dec"]) @ tensors["W_enc"] + tensors["b_enc"]
    with torch.no_grad():
        z = loaded.sae.encode(x)
    if architecture == "standard":
        torch.testing.assert_close(z, torch.relu(pre))
    elif architecture == "jumprelu":
        torch.testing.assert_close(z, pre * (pre > tensors["threshold"]))
    else:
        assert int((z > 0).sum(dim=1).max()) <= 5


def test_saelens_directory_without_input_centring_gets_the_same_preactivations(tmp_path):
    tensors = random_tensors()
    write_saelens_directory(tmp_path, "standard", tensors, apply_b_dec_to_input=False)
    x = torch.randn(6, D_IN)
    with torch.no_grad():
        z = load_sae(tmp_path).sae.encode(x)
    torch.testing.assert_close(z, torch.relu(x @ tensors["W_enc"] + tensors["b_enc"]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", CONFIGS)
def test_folded_export_reads_raw_activations_directly(tmp_path, name):
    sae, normalisation = trained_looking(name)
    save_sae(sae=sae, normalisation=normalisation, directory=tmp_path, fold=True)
    folded = load_sae(tmp_path)
    assert folded.normalisation.is_identity()
    assert json.loads((tmp_path / CFG_FILENAME).read_text())["metadata"]["concord"]["normalisation_folded"] is True
    x = torch.randn(30, D_IN) * 4 + 1
    with torch.no_grad():
        reference = NormalisedSAE(sae, normalisation)(x)
        torch.testing.assert_close(folded.sae.decode(folded.sae.encode(x)), reference, atol=1e-4, rtol=1e-4)


def test_saved_metadata_marks_saelens_6_and_has_every_key_saelens_reads(tmp_path):
    sae, normalisation = trained_looking("topk")
    save_sae(sae=sae, normalisation=normalisation, directory=tmp_path, metadata=METADATA)
    metadata = json.loads((tmp_path / CFG_FILENAME).read_text())["metadata"]
    # SAELens treats a file without sae_lens_version (or older than 6.0) as pre-6.0 and drops metadata.
    major = int(metadata["sae_lens_version"].split(".")[0])
    assert major >= 6
    assert set(SAELENS_METADATA_DEFAULTS) <= set(metadata)
    assert metadata["model_name"] == METADATA["model_name"] and metadata["prepend_bos"] is True
    # Unfolded, the normalisation is stated where every reader of `metadata` keeps it.
    stated = metadata["input_normalisation"]
    assert stated["scale"] == normalisation.scale and stated["mean"] == normalisation.to_dict()["mean"]
    save_sae(sae=sae, normalisation=normalisation, directory=tmp_path / "folded", fold=True)
    assert "input_normalisation" not in json.loads((tmp_path / "folded" / CFG_FILENAME).read_text())["metadata"]


def test_export_folds_by_default_and_warns_when_unfolded(tmp_path):
    sae, normalisation = trained_looking("jumprelu")
    save_sae(
        sae=sae,
        normalisation=normalisation,
        directory=tmp_path / "stored",
        metadata={**METADATA, "model_name": "/home/someone/models/bio"},
    )
    assert export_sae_directory(source=tmp_path / "stored", target=tmp_path / "folded", model_name="org/bio") == []
    folded = json.loads((tmp_path / "folded" / CFG_FILENAME).read_text())["metadata"]
    assert folded["model_name"] == "org/bio" and folded["concord"]["normalisation_folded"] is True
    x = torch.randn(40, D_IN) * 3
    with torch.no_grad():
        torch.testing.assert_close(
            load_sae(tmp_path / "folded").sae.encode(x),
            NormalisedSAE(sae, normalisation).encode(x),
            atol=1e-4,
            rtol=1e-4,
        )
    with pytest.warns(UnfoldedExportWarning, match="expect normalised activations"):
        messages = export_sae_directory(source=tmp_path / "stored", target=tmp_path / "unfolded", fold=False)
    assert len(messages) == 1
    unfolded = load_sae(tmp_path / "unfolded")
    assert unfolded.normalisation.scale == normalisation.scale
    with torch.no_grad():
        assert torch.equal(unfolded.normalised().encode(x), NormalisedSAE(sae, normalisation).encode(x))


def test_rescale_acts_by_decoder_norm_is_honoured_on_topk(tmp_path):
    tensors = random_tensors()
    tensors["W_dec"] *= torch.rand(D_SAE, 1) * 3 + 0.2  # rows of varied norm, as SAELens leaves them
    write_saelens_directory(tmp_path, "topk", tensors, k=4, rescale_acts_by_decoder_norm=True)
    x = torch.randn(20, D_IN)
    # SAELens's TopKSAE, written out: pre * ||W_dec_i||, top-k, ReLU; decode z / ||W_dec_i|| @ W_dec + b_dec.
    norms = tensors["W_dec"].norm(dim=1)
    pre = ((x - tensors["b_dec"]) @ tensors["W_enc"] + tensors["b_enc"]) * norms
    top = pre.topk(4, dim=1)
    z = torch.zeros_like(pre).scatter(1, top.indices, top.values.relu())
    x_hat = (z / norms) @ tensors["W_dec"] + tensors["b_dec"]
    loaded = load_sae(tmp_path).sae
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), z, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(loaded.decode(loaded.encode(x)), x_hat, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "architecture, extra, message",
    [
        ("standard", {"normalize_activations": "expected_average_only_in"}, "dataset-wide factor"),
        ("standard", {"normalize_activations": "constant_norm_rescale"}, "its own norm"),
        ("topk", {"k": 3, "normalize_activations": "layer_norm"}, "layer-normalised"),
        ("standard", {"normalize_activations": "covariance_whitening"}, "whitening matrix"),
        ("standard", {"rescale_acts_by_decoder_norm": True}, "ambiguous"),
        ("topk", {"k": 3, "rescale_acts_by_decoder_norm": "yes"}, "true or false"),
    ],
)
def test_flags_that_change_the_encoding_are_refused_with_the_reason(tmp_path, architecture, extra, message):
    write_saelens_directory(tmp_path, architecture, random_tensors(), **extra)
    with pytest.raises(SAEFormatError, match=message):
        load_sae(tmp_path)


def test_save_rejects_reserved_or_unserialisable_metadata(tmp_path):
    sae, normalisation = trained_looking("topk")
    with pytest.raises(ValueError, match="reserved"):
        save_sae(sae=sae, normalisation=normalisation, directory=tmp_path, metadata={"concord": 1})
    with pytest.raises(ValueError, match="JSON"):
        save_sae(sae=sae, normalisation=normalisation, directory=tmp_path, metadata={"when": object()})
    assert not (tmp_path / CFG_FILENAME).exists()


def test_non_finite_metadata_numbers_are_stored_as_null(tmp_path):
    sae, normalisation = trained_looking("topk")
    metrics = {"fvu": float("nan"), "fve": 0.5, "curve": [1.0, float("inf")]}
    save_sae(sae=sae, normalisation=normalisation, directory=tmp_path, metadata={"metrics": metrics})
    assert load_sae(tmp_path).metadata["metrics"] == {"fvu": None, "fve": 0.5, "curve": [1.0, None]}


# --- malformed directories -----------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    sae, normalisation = trained_looking("jumprelu")
    save_sae(sae=sae, normalisation=normalisation, directory=tmp_path, metadata=METADATA)
    return tmp_path


def edit_cfg(directory, change) -> None:
    cfg = json.loads((directory / CFG_FILENAME).read_text())
    change(cfg)
    (directory / CFG_FILENAME).write_text(json.dumps(cfg))


def edit_tensors(directory, change) -> None:
    tensors = load_file(directory / WEIGHTS_FILENAME)
    change(tensors)
    save_file(tensors, directory / WEIGHTS_FILENAME)


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda d: (d / CFG_FILENAME).unlink(), "missing cfg.json"),
        (lambda d: (d / WEIGHTS_FILENAME).unlink(), "missing sae_weights.safetensors"),
        (lambda d: (d / CFG_FILENAME).write_text('{"d_in": 8,'), "cfg.json is not valid JSON"),
        (lambda d: (d / CFG_FILENAME).write_text("[1, 2]"), "must hold a JSON object"),
        (lambda d: edit_cfg(d, lambda c: c.pop("d_in")), "missing key 'd_in'"),
        (lambda d: edit_cfg(d, lambda c: c.update(d_sae="24")), "'d_sae' must be a positive integer"),
        (lambda d: edit_cfg(d, lambda c: c.update(architecture="gated")), "unknown architecture 'gated'"),
        (lambda d: edit_cfg(d, lambda c: c.update(normalize_activations="layer_norm")), "normalize_activations"),
        (lambda d: edit_cfg(d, lambda c: c.update(d_in=9)), "d_in=8 but cfg.json says 9"),
        (
            lambda d: edit_cfg(d, lambda c: c["metadata"]["concord"]["config"].update(architecture="nope")),
            "unknown architecture 'nope'",
        ),
        (
            lambda d: edit_cfg(d, lambda c: c["metadata"]["concord"]["normalisation"].update(mean=[0.0])),
            "normalisation",
        ),
        (lambda d: edit_tensors(d, lambda t: t.pop("W_dec")), "missing tensor 'W_dec'"),
        (lambda d: edit_tensors(d, lambda t: t.pop("threshold")), "missing tensor 'threshold'"),
        (lambda d: edit_tensors(d, lambda t: t.update(extra=torch.zeros(2))), "unexpected tensor(s) 'extra'"),
        (
            lambda d: edit_tensors(d, lambda t: t.update(W_enc=torch.zeros(D_SAE, D_IN))),
            "tensor 'W_enc' has shape [24, 8], expected [8, 24]",
        ),
        (
            lambda d: edit_tensors(d, lambda t: t.update(b_dec=torch.zeros(D_IN, dtype=torch.int32))),
            "tensor 'b_dec' has dtype",
        ),
        (lambda d: edit_tensors(d, lambda t: t["b_enc"].__setitem__(0, float("nan"))), "tensor 'b_enc' contains NaN"),
        (lambda d: edit_tensors(d, lambda t: t["threshold"].__setitem__(0, -1.0)), "'threshold' has negative entries"),
    ],
)
def test_malformed_directories_raise_format_errors_naming_the_problem(saved, break_it, message):
    break_it(saved)
    with pytest.raises(SAEFormatError) as error:
        load_sae(saved)
    assert message in str(error.value)


@pytest.mark.parametrize("keep", [0.99, 0.5, 0.01])
def test_truncated_weights_raise_format_errors(saved, keep):
    data = (saved / WEIGHTS_FILENAME).read_bytes()
    (saved / WEIGHTS_FILENAME).write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SAEFormatError, match="sae_weights.safetensors"):
        load_sae(saved)


def test_not_a_directory_and_topk_without_k(tmp_path):
    with pytest.raises(SAEFormatError, match="is not a directory"):
        load_sae(tmp_path / "absent")
    write_saelens_directory(tmp_path, "topk", random_tensors())
    with pytest.raises(SAEFormatError, match="needs an integer 'k'"):
        load_sae(tmp_path)


def test_batchtopk_threshold_must_be_global(tmp_path):
    sae, normalisation = trained_looking("batchtopk")
    save_sae(sae=sae, normalisation=normalisation, directory=tmp_path)
    edit_tensors(tmp_path, lambda t: t["threshold"].__setitem__(3, 0.9))
    with pytest.raises(SAEFormatError, match="one global threshold"):
        load_sae(tmp_path)
