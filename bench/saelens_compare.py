"""Concord's SAELens files against sae-lens itself: max |Δ| of latents and reconstructions, both directions.

sae-lens is not a Concord dependency: run this in a throwaway environment that has it, with the
repository on the path, e.g.

    python3 -m venv /tmp/saelens-venv && /tmp/saelens-venv/bin/pip install torch==2.13.0 sae-lens
    PYTHONPATH=. /tmp/saelens-venv/bin/python bench/saelens_compare.py

Rows:
- concord→saelens (folded): `export_sae_directory` with its default fold, read by `SAE.load_from_disk`
  and fed RAW activations, against Concord's normalising SAE; metadata must survive.
- concord→saelens (unfolded): the same with fold=False, fed activations normalised as
  `metadata.input_normalisation` states; also what raw activations would give (the silent error).
- concord→saelens→concord: loaded in SAELens, written by its `save_model`, read back by Concord.
- saelens→concord: SAEs built by SAELens with random weights (inference classes, and the
  batchtopk / matryoshka training classes through `save_inference_model`), read by `load_sae`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

try:
    import sae_lens
    from sae_lens import SAE
except ImportError:
    sys.exit("sae-lens is not installed here; see the module docstring")

from inference.engine.formats import export_sae_directory, load_sae, save_sae
from inference.engine.saes import (
    BatchTopKConfig,
    JumpReLUConfig,
    MatryoshkaConfig,
    Normalisation,
    NormalisedSAE,
    ReLUConfig,
    TopKConfig,
    build_sae,
)

D_IN, D_SAE, K = 64, 256, 8
CONCORD = {
    "relu": ReLUConfig(d_in=D_IN, d_sae=D_SAE),
    "topk": TopKConfig(d_in=D_IN, d_sae=D_SAE, k=K),
    "batchtopk": BatchTopKConfig(d_in=D_IN, d_sae=D_SAE, k=K),
    "jumprelu": JumpReLUConfig(d_in=D_IN, d_sae=D_SAE),
    "matryoshka": MatryoshkaConfig(d_in=D_IN, d_sae=D_SAE, k=K, widths=(32, 128, D_SAE)),
}
METADATA = {"model_name": "google/gemma-3-270m", "hook_name": "blocks.9.hook_resid_post"}


def trained_looking(name: str, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    sae = build_sae(CONCORD[name], seed=seed)
    with torch.no_grad():
        for parameter in sae.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator))
        sae.after_step()
        if name == "jumprelu":
            sae.log_threshold.copy_(torch.log(torch.rand(D_SAE, generator=generator) * 0.5 + 0.05))
        if name == "batchtopk":
            sae.threshold.fill_(0.3)
    normalisation = Normalisation(mean=torch.randn(D_IN, generator=generator) * 2, scale=0.37)
    return sae.eval(), normalisation


def raw_activations(n: int = 2000) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, D_IN, generator=generator) * 4 + 2


def max_delta(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def concord_to_saelens(rows: list, root: Path) -> None:
    x = raw_activations()
    for name in CONCORD:
        sae, normalisation = trained_looking(name)
        stored = root / f"{name}-stored"
        save_sae(sae=sae, normalisation=normalisation, directory=stored, metadata=METADATA)
        reference = NormalisedSAE(sae, normalisation)
        with torch.no_grad():
            z_ref, x_hat_ref = reference.encode(x), reference(x)
        folded = root / f"{name}-folded"
        export_sae_directory(source=stored, target=folded)
        theirs = SAE.load_from_disk(folded)
        kept = all(getattr(theirs.cfg.metadata, key) == value for key, value in METADATA.items())
        kept = kept and theirs.cfg.metadata.concord is not None
        with torch.no_grad():
            z = theirs.encode(x)
            rows.append(
                (
                    "concord→saelens folded, raw x",
                    name,
                    max_delta(z, z_ref),
                    max_delta(theirs.decode(z), x_hat_ref),
                    kept,
                )
            )
        unfolded = root / f"{name}-unfolded"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_sae_directory(source=stored, target=unfolded, fold=False)
        theirs = SAE.load_from_disk(unfolded)
        stated = theirs.cfg.metadata.input_normalisation
        mean, scale = torch.tensor(stated["mean"]), stated["scale"]
        with torch.no_grad():
            z = theirs.encode((x - mean) * scale)
            rows.append(
                (
                    "concord→saelens unfolded, x as stated",
                    name,
                    max_delta(z, z_ref),
                    max_delta(theirs.decode(z) / scale + mean, x_hat_ref),
                    stated is not None,
                )
            )
            rows.append(
                (
                    "concord→saelens unfolded, raw x (misuse)",
                    name,
                    max_delta(theirs.encode(x), z_ref),
                    float("nan"),
                    True,
                )
            )
        # Round trip: SAELens reads and rewrites the unfolded file; Concord must read the same SAE back.
        again = root / f"{name}-again"
        theirs.save_model(again)
        back = load_sae(again)
        with torch.no_grad():
            rows.append(
                (
                    "concord→saelens→concord",
                    name,
                    max_delta(back.normalised().encode(x), z_ref),
                    max_delta(back.normalised()(x), x_hat_ref),
                    type(back.sae) is type(sae) and back.normalisation.scale == normalisation.scale,
                )
            )


def saelens_to_concord(rows: list, root: Path) -> None:
    from sae_lens import (
        BatchTopKTrainingSAE,
        BatchTopKTrainingSAEConfig,
        JumpReLUSAE,
        JumpReLUSAEConfig,
        MatryoshkaBatchTopKTrainingSAE,
        MatryoshkaBatchTopKTrainingSAEConfig,
        StandardSAE,
        StandardSAEConfig,
        TopKSAE,
        TopKSAEConfig,
    )

    x = raw_activations()
    metadata = {"model_name": "gpt2", "hook_name": "blocks.8.hook_resid_pre"}

    def randomise(sae) -> None:
        generator = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for parameter_name, parameter in sae.named_parameters():
                if parameter_name == "threshold":
                    parameter.copy_(torch.rand(parameter.shape, generator=generator) * 0.5)
                else:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)

    builds = [
        ("relu (standard)", lambda: StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE))),
        (
            "relu (standard), no b_dec centring",
            lambda: StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=False)),
        ),
        ("topk", lambda: TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K))),
        (
            "topk, rescale_acts_by_decoder_norm",
            lambda: TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, rescale_acts_by_decoder_norm=True)),
        ),
        ("jumprelu", lambda: JumpReLUSAE(JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE))),
    ]
    for label, build in builds:
        sae = build()
        randomise(sae)
        sae.cfg.metadata.model_name, sae.cfg.metadata.hook_name = metadata["model_name"], metadata["hook_name"]
        directory = root / f"saelens-{label.replace(' ', '_').replace(',', '')}"
        sae.save_model(directory)
        ours = load_sae(directory)
        with torch.no_grad():
            z_ref = sae.encode(x)
            rows.append(
                (
                    "saelens→concord",
                    label,
                    max_delta(ours.sae.encode(x), z_ref),
                    max_delta(ours.sae.decode(ours.sae.encode(x)), sae.decode(z_ref)),
                    ours.metadata.get("hook_name") == metadata["hook_name"],
                )
            )
    # Training-only architectures reach other tools as SAELens's inference files (jumprelu).
    trained = [
        (
            "batchtopk (training → jumprelu)",
            lambda: BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)),
        ),
        (
            "matryoshka batchtopk (training → jumprelu)",
            lambda: MatryoshkaBatchTopKTrainingSAE(
                MatryoshkaBatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, matryoshka_widths=[32, 128, D_SAE])
            ),
        ),
    ]
    for label, build in trained:
        sae = build()
        randomise(sae)
        with torch.no_grad():
            sae.topk_threshold.fill_(0.25)
        directory = root / f"saelens-{label.split()[0]}"
        sae.save_inference_model(directory)
        theirs = SAE.load_from_disk(directory)
        ours = load_sae(directory)
        with torch.no_grad():
            z_ref = theirs.encode(x)
            rows.append(
                (
                    "saelens→concord",
                    label,
                    max_delta(ours.sae.encode(x), z_ref),
                    max_delta(ours.sae.decode(ours.sae.encode(x)), theirs.decode(z_ref)),
                    type(ours.sae).__name__ == "JumpReLUSAE",
                )
            )


def main() -> None:
    torch.manual_seed(0)
    rows: list = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        concord_to_saelens(rows, root)
        saelens_to_concord(rows, root)
    print(
        f"sae-lens {sae_lens.__version__}, torch {torch.__version__}; d_in {D_IN}, d_sae {D_SAE}, k {K}; "
        f"2,000 activations"
    )
    print("| direction | architecture | max abs Δ latents | max abs Δ reconstruction | metadata/type kept |")
    print("|---|---|---|---|---|")
    for direction, name, dz, dx, kept in rows:
        print(f"| {direction} | {name} | {dz:.2e} | {dx:.2e} | {'yes' if kept else 'NO'} |")
    print(json.dumps({"rows": len(rows)}))


if __name__ == "__main__":
    main()
