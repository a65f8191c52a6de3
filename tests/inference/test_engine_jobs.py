"""The SAE pipeline through its doors: commands, the API and a real Celery worker on Redis."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import Role
from features.models import SAE, ActivationSet, Corpus, Latent, LatentExample
from tests import factories
from tests.conftest import wait_for_job
from tests.inference.engine.tiny_hosts import tiny_bert, tiny_gpt2

TAGGED = [
    ("patient reports chest pain radiating to the left arm with diaphoresis", ["MI"]),
    ("history of type two diabetes on metformin , hba1c elevated", ["T2DM"]),
    ("shortness of breath on exertion , no fever", []),
    ("ct of the chest shows a small nodule in the right upper lobe", []),
]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random BERT saved like any Hugging Face checkpoint: the same loading path as a hub id."""
    texts = [text for text, _ in TAGGED]
    handle = tiny_bert(texts)
    directory = tmp_path_factory.mktemp("tiny-bert")
    handle.model.save_pretrained(directory)
    handle.tokenizer.save_pretrained(directory)
    return directory


def _corpus_file(tmp_path: Path, copies: int = 10) -> Path:
    path = tmp_path / "notes.jsonl"
    rows = [
        {"external_id": f"n{i}-{j}", "text": text, "concept_tags": tags}
        for i in range(copies)
        for j, (text, tags) in enumerate(TAGGED)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _call(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.slow  # 29 s measured (setup + call), --durations=50
@pytest.mark.django_db
def test_cache_train_mine_through_the_commands(tiny_model_dir, tmp_path):
    _call("import_corpus", str(_corpus_file(tmp_path)), "--name", "notes")
    _call(
        "cache_activations",
        "--model",
        str(tiny_model_dir),
        "--hook",
        "blocks.1.hook_resid_post",
        "--corpus",
        "notes",
        "--dtype",
        "float32",
    )
    activation_set = ActivationSet.objects.get()
    assert activation_set.n_tokens > 0 and activation_set.hook_point.layer == 1
    assert len(activation_set.normalisation["mean"]) == 32

    out_dir = tmp_path / "sae"
    output = _call(
        "train_sae",
        "--activation-set",
        str(activation_set.pk),
        "--arch",
        "topk",
        "--width",
        "64",
        "--k",
        "4",
        "--steps",
        "60",
        "--batch-size",
        "64",
        "--lr",
        "0.003",
        "--out",
        str(out_dir),
    )
    metrics = json.loads(output.strip().splitlines()[-1])
    assert {"mse", "fve", "l0", "dead_fraction"} <= set(metrics)
    assert metrics["l0"] <= 4 + 1e-6
    assert (out_dir / "cfg.json").is_file() and (out_dir / "sae_weights.safetensors").is_file()
    sae = SAE.objects.get()
    assert (sae.d_in, sae.d_sae, sae.k, sae.architecture) == (32, 64, 4, "topk")
    assert sae.latents.count() == 64

    summary = json.loads(_call("mine_latents", "--sae", str(sae.pk)).strip().splitlines()[-1])
    assert summary["n_latents"] == 64
    live = Latent.objects.filter(sae=sae, density__gt=0)
    assert live.exists()
    example = LatentExample.objects.filter(latent__sae=sae, kind="top").order_by("-max_activation").first()
    assert len(example.tokens) == len(example.activations) > 0
    assert max(example.activations) == pytest.approx(example.max_activation, rel=1e-4)
    assert "monosemanticity" in SAE.objects.get().metrics
    assert Latent.objects.filter(sae=sae).exclude(best_tag="").exists()


@pytest.mark.slow  # 22 s measured (setup + call), --durations=50
@pytest.mark.django_db
def test_training_on_a_causal_model_reports_ce_loss_recovered(tmp_path):
    handle = tiny_gpt2([text for text, _ in TAGGED])
    model_dir = tmp_path / "tiny-gpt2"
    handle.model.save_pretrained(model_dir)
    handle.tokenizer.save_pretrained(model_dir)
    _call("import_corpus", str(_corpus_file(tmp_path, copies=5)), "--name", "notes")
    _call(
        "cache_activations",
        "--model",
        str(model_dir),
        "--hook",
        "blocks.1.hook_resid_post",
        "--corpus",
        "notes",
        "--dtype",
        "float32",
    )
    activation_set = ActivationSet.objects.get()
    assert activation_set.host_model.kind == "causal"
    output = _call(
        "train_sae",
        "--activation-set",
        str(activation_set.pk),
        "--arch",
        "topk",
        "--width",
        "64",
        "--k",
        "8",
        "--steps",
        "80",
        "--batch-size",
        "64",
        "--lr",
        "0.003",
        "--out",
        str(tmp_path / "sae"),
    )
    metrics = json.loads(output.strip().splitlines()[-1])
    assert metrics["ce_loss_zero_ablated"] != metrics["ce_loss_clean"]
    expected = (metrics["ce_loss_zero_ablated"] - metrics["ce_loss_with_sae"]) / (
        metrics["ce_loss_zero_ablated"] - metrics["ce_loss_clean"]
    )
    assert metrics["ce_loss_recovered"] == pytest.approx(expected)
    assert SAE.objects.get().metrics["ce_loss_recovered"] == pytest.approx(expected)


@pytest.mark.slow  # 7 s measured (setup + call), --durations=50
@pytest.mark.django_db
def test_train_sae_from_npy_prints_metrics_json_last(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "acts.npy"
    np.save(path, rng.standard_normal((2000, 16)).astype(np.float32))
    output = _call(
        "train_sae",
        "--activations",
        str(path),
        "--arch",
        "relu",
        "--width",
        "32",
        "--l1",
        "0.5",
        "--steps",
        "40",
        "--batch-size",
        "128",
        "--out",
        str(tmp_path / "out"),
    )
    metrics = json.loads(output.strip().splitlines()[-1])
    assert {"mse", "fve", "l0", "dead_fraction"} <= set(metrics)
    assert not SAE.objects.exists()  # a bare .npy has no hook point to register the SAE under


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "topk", "--width", "8", "--k", "9"], "k must be between 1 and the width"),
        (["--arch", "topk", "--width", "0"], "width must be a positive"),
        (["--arch", "relu", "--width", "8", "--lr", "0"], "learning rate"),
    ],
)
def test_train_sae_refuses_bad_options_clearly(tmp_path, args, message):
    path = tmp_path / "acts.npy"
    np.save(path, np.zeros((10, 4), dtype=np.float32))
    with pytest.raises(CommandError, match=message):
        _call("train_sae", "--activations", str(path), *args, "--out", str(tmp_path / "o"))


@pytest.mark.django_db
def test_train_sae_refuses_missing_file_and_cache_refuses_bad_hook(tmp_path, tiny_model_dir):
    with pytest.raises(CommandError, match="no such file"):
        _call(
            "train_sae",
            "--activations",
            str(tmp_path / "nope.npy"),
            "--arch",
            "topk",
            "--width",
            "8",
            "--out",
            str(tmp_path / "o"),
        )
    _call("import_corpus", str(_corpus_file(tmp_path, copies=1)), "--name", "c")
    with pytest.raises(CommandError, match="hook point 'blocks.9.hook_resid_post'"):
        _call(
            "cache_activations", "--model", str(tiny_model_dir), "--hook", "blocks.9.hook_resid_post", "--corpus", "c"
        )
    with pytest.raises(CommandError, match="no corpus"):
        _call(
            "cache_activations",
            "--model",
            str(tiny_model_dir),
            "--hook",
            "blocks.0.hook_resid_post",
            "--corpus",
            "missing",
        )


@pytest.mark.django_db
def test_export_folds_by_default_and_both_exports_import_to_the_same_latents(tiny_model_dir, tmp_path):
    import torch

    from inference.engine.activations import ActivationStore
    from inference.engine.formats import load_sae

    _call("import_corpus", str(_corpus_file(tmp_path, copies=2)), "--name", "notes")
    _call(
        "cache_activations", "--model", str(tiny_model_dir), "--hook", "blocks.0.hook_resid_post", "--corpus", "notes"
    )
    activation_set = ActivationSet.objects.get()
    _call(
        "train_sae",
        "--activation-set",
        str(activation_set.pk),
        "--arch",
        "jumprelu",
        "--width",
        "48",
        "--steps",
        "20",
        "--batch-size",
        "32",
        "--out",
        str(tmp_path / "trained"),
        "--name",
        "jr",
    )
    sae = SAE.objects.get(name="jr")
    folded, unfolded = tmp_path / "folded", tmp_path / "unfolded"
    _call("export_sae", str(sae.pk), str(folded))
    errors = io.StringIO()
    call_command("export_sae", str(sae.pk), str(unfolded), "--no-fold", stdout=io.StringIO(), stderr=errors)
    assert "expect normalised activations" in errors.getvalue()

    metadata = json.loads((folded / "cfg.json").read_text())["metadata"]
    assert metadata["sae_lens_version"] and metadata["hook_name"] == "blocks.0.hook_resid_post"
    assert metadata["model_name"] and not Path(metadata["model_name"]).is_absolute()
    assert metadata["concord"]["normalisation_folded"] is True and "input_normalisation" not in metadata
    unfolded_metadata = json.loads((unfolded / "cfg.json").read_text())["metadata"]
    assert unfolded_metadata["input_normalisation"]["scale"] == sae.normalisation["scale"]

    # Raw activations through the trained SAE (normalising) = through the folded export (not normalising).
    store = ActivationStore.open(activation_set.artifact_uri, "blocks.0.hook_resid_post")
    raw = torch.from_numpy(np.asarray(store[np.arange(64)], dtype=np.float32))
    trained = load_sae(sae.artifact_uri).normalised()
    with torch.no_grad():
        expected = trained.encode(raw)
        assert torch.allclose(load_sae(folded).sae.encode(raw), expected, atol=1e-4)
    for directory, name in ((folded, "jr-folded"), (unfolded, "jr-unfolded")):
        _call("import_sae", str(directory), "--name", name)
        again = SAE.objects.get(name=name)
        assert (again.architecture, again.d_sae, again.hook_point) == ("jumprelu", 48, sae.hook_point)
        with torch.no_grad():
            assert torch.allclose(load_sae(again.artifact_uri).normalised().encode(raw), expected, atol=1e-4)
    with pytest.raises(CommandError, match="not empty"):
        _call("export_sae", str(sae.pk), str(folded))


@pytest.mark.django_db
def test_import_sae_names_what_is_wrong(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "cfg.json").write_text("{not json")
    with pytest.raises(CommandError, match="missing sae_weights.safetensors"):
        _call("import_sae", str(broken))
    (broken / "sae_weights.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CommandError, match="cfg.json"):
        _call("import_sae", str(broken))


@pytest.mark.slow  # 113 s measured (setup + call), --durations=50
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_on_redis_trains_sae_from_the_api_with_progress(celery_worker, tiny_model_dir, tmp_path):
    researcher = factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    _call("import_corpus", str(_corpus_file(tmp_path, copies=25)), "--name", "notes")
    corpus = Corpus.objects.get()
    host_model = factories.host_model(n_layers=2, d_model=32)
    host_model.source = str(tiny_model_dir)
    host_model.save()
    response = client.post(
        "/api/v1/jobs/cache-activations/",
        {"host_model": host_model.pk, "hook_name": "blocks.1.hook_resid_post", "corpus": corpus.pk, "dtype": "float32"},
        format="json",
    )
    assert response.status_code == 202, response.content
    job = wait_for_job(response.json()["id"])
    assert job.status == "succeeded", job.message
    response = client.post(
        "/api/v1/jobs/train-sae/",
        {
            "activation_set": job.result["activation_set_id"],
            "arch": "batchtopk",
            "width": 64,
            "k": 4,
            "steps": 400,
            "batch_size": 64,
            "checkpoint_every": 100,
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["queue"] == "gpu"
    job = wait_for_job(response.json()["id"], timeout=300)
    assert (job.status, job.progress) == ("succeeded", 1.0), job.message
    assert any(0.0 < p < 1.0 for p in job.seen_progress), job.seen_progress
    assert job.device == "cpu"
    sae = SAE.objects.get(pk=job.result["sae_id"])
    assert sae.metrics["fve"] == job.result["metrics"]["fve"]
    response = client.post("/api/v1/jobs/mine-latents/", {"sae": sae.pk}, format="json")
    job = wait_for_job(response.json()["id"], timeout=300)
    assert job.status == "succeeded", job.message
    assert LatentExample.objects.filter(latent__sae=sae).exists()


def test_job_launch_apis_refuse_physicians(db):
    client = APIClient()
    client.force_authenticate(factories.user(role=Role.PHYSICIAN))
    for url in ("/api/v1/jobs/cache-activations/", "/api/v1/jobs/train-sae/", "/api/v1/jobs/mine-latents/"):
        assert client.post(url, {}, format="json").status_code == 403


class WorkerDied(BaseException):
    """Stands for the worker process being killed: nothing in the job catches it."""


@pytest.mark.slow  # 15 s measured (setup + call), --durations=50
@pytest.mark.django_db
def test_a_killed_training_job_resumes_from_its_checkpoint_to_the_same_weights(tmp_path):
    from safetensors.numpy import load_file

    from inference.jobs import train_sae_work
    from inference.services import job_run, train_sae_request

    path = tmp_path / "acts.npy"
    np.save(path, np.random.default_rng(1).standard_normal((3000, 16)).astype(np.float32))
    options = {
        "activations_path": str(path),
        "arch": "topk",
        "width": 32,
        "k": 4,
        "steps": 60,
        "batch_size": 64,
        "checkpoint_every": 20,
        "enqueue": False,
    }
    whole = train_sae_request(out=str(tmp_path / "whole"), **options)
    assert job_run(job_id=whole.pk).status == "succeeded"

    killed = train_sae_request(out=str(tmp_path / "killed"), **options)
    checkpoints = tmp_path.parent / "artifacts" / "checkpoints" / str(killed.uuid)

    def die_after_a_checkpoint(fraction: float, message: str) -> None:
        if fraction > 0.5 and any(checkpoints.glob("step-*")):
            raise WorkerDied

    with pytest.raises(WorkerDied):
        train_sae_work(killed, die_after_a_checkpoint)
    assert not (tmp_path / "killed").exists() and any(checkpoints.glob("step-*"))
    # The redelivered message runs the job again; training picks up at the last checkpoint.
    messages: list[str] = []
    resumed = job_run(job_id=killed.pk, echo=lambda f, m: messages.append(m))
    assert resumed.status == "succeeded", resumed.message
    assert any(re.match(r"resumed at step [1-9]\d*/60", message) for message in messages), messages[:3]
    first = load_file(tmp_path / "whole" / "sae_weights.safetensors")
    second = load_file(tmp_path / "killed" / "sae_weights.safetensors")
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[name], second[name]) for name in first)
