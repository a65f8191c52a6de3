"""The demo's real MiniLM at layer 3 and a small TopK SAE trained on a split of the shipped corpus,
built once per test session on disk: a training split, a held-out in-distribution split and the
shipped discharge-prose slice, each captured through the host model."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from features.democorpus import corpus_path, load_snippets, ood_path

HOOK = "blocks.3.hook_resid_post"
N_TRAIN, N_HELD_OUT, N_OOD = 500, 200, 150
MAX_LENGTH = 64


@dataclass(frozen=True)
class MiniLMWorld:
    root: Path
    model_source: str
    splits: dict[str, list[dict]]  # "train", "held_out", "ood" -> corpus records
    activation_dirs: dict[str, Path]
    sae_dir: Path


def build_world(root: Path) -> MiniLMWorld:
    import numpy as np
    import torch

    from inference.engine.activations import ActivationStore
    from inference.engine.formats import save_sae
    from inference.engine.hooks import capture_activations
    from inference.engine.host_models import load_host_model, minilm_path
    from inference.engine.saes import config_from_dict
    from inference.engine.training import TrainingConfig, train_sae

    records = load_snippets(corpus_path())
    chosen = random.Random(12).sample(range(len(records)), N_TRAIN + N_HELD_OUT)
    splits = {
        "train": [records[i] for i in sorted(chosen[:N_TRAIN])],
        "held_out": [records[i] for i in sorted(chosen[N_TRAIN:])],
        "ood": load_snippets(ood_path())[:N_OOD],
    }
    source = str(minilm_path())
    handle = load_host_model(source=source, revision=None, device="cpu", kind="encoder")
    activation_dirs = {}
    for name, split in splits.items():
        out = root / "activations" / name
        if not (out / "manifest.json").exists():
            capture_activations(
                handle=handle,
                texts=[r["text"] for r in split],
                hook_names=[HOOK],
                batch_size=64,
                max_length=MAX_LENGTH,
                device="cpu",
                out_dir=out,
                dtype=np.float32,
            )
        activation_dirs[name] = out
    sae_dir = root / "sae"
    if not (sae_dir / "cfg.json").exists():
        torch.manual_seed(0)
        store = ActivationStore.open(activation_dirs["train"], HOOK)
        result = train_sae(
            sae_cfg=config_from_dict({"architecture": "topk", "d_in": 384, "d_sae": 512, "k": 16}),
            train_cfg=TrainingConfig(
                steps=200, batch_size=512, lr=1e-3, seed=0, device="cpu", checkpoint_every=0, log_every=100
            ),
            activations=store,
        )
        save_sae(
            sae=result.sae,
            normalisation=result.normalisation,
            directory=sae_dir,
            metadata={"model_name": source, "hook_name": HOOK, "metrics": result.metrics},
        )
    return MiniLMWorld(root=root, model_source=source, splits=splits, activation_dirs=activation_dirs, sae_dir=sae_dir)
