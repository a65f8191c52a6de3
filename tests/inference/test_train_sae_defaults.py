"""`train_sae` without --lr: the width-scaled default learning rate, recorded, recovers a planted dictionary."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import call_command

from inference.engine.formats import load_sae
from inference.engine.training import default_learning_rate
from tests.inference.engine.test_planted import planted_dictionary, recovered_fraction


@pytest.mark.slow
@pytest.mark.django_db
def test_train_sae_command_without_lr_uses_the_width_scaled_default_and_recovers_atoms(tmp_path):
    atoms, activations = planted_dictionary(n_tokens=40_000, d_in=64, n_atoms=128, mean_active=3)
    path = tmp_path / "planted.npy"
    np.save(path, activations)
    out = io.StringIO()
    call_command(
        "train_sae",
        "--activations",
        str(path),
        "--arch",
        "topk",
        "--width",
        "256",
        "--k",
        "3",
        "--steps",
        "800",
        "--batch-size",
        "256",
        "--out",
        str(tmp_path / "sae"),
        stdout=out,
        stderr=io.StringIO(),
    )
    metrics = json.loads(out.getvalue().strip().splitlines()[-1])
    loaded = load_sae(tmp_path / "sae")
    assert loaded.metadata["training"]["lr"] == pytest.approx(default_learning_rate(256))
    assert recovered_fraction(atoms, loaded.sae.W_dec) >= 0.9
    assert metrics["fve"] > 0.8
