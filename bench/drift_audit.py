"""Time of a label-free drift audit of the shipped discharge slice (300 snippets) against chart snippets,
with the demo's MiniLM at layer 3 and a 2048-wide TopK SAE (k = 32): capture, encode, compare.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/drift_audit.py [--reference 1000] [--threads 2] [--sae-dir DIR]

Without --sae-dir the SAE has random weights of the demo's shape (same cost); the verdict then means
nothing, only the times do. Prints a table of wall and CPU seconds per stage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=int, default=1000, help="chart snippets in the reference corpus")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sae-dir", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from features.democorpus import corpus_path, load_snippets, ood_path
    from inference.engine.activations import ActivationStore
    from inference.engine.drift import compare_corpora, corpus_statistics
    from inference.engine.formats import load_sae
    from inference.engine.hooks import capture_activations
    from inference.engine.host_models import load_host_model, minilm_path
    from inference.engine.saes import (
        Normalisation,
        NormalisedSAE,
        build_sae,
        config_from_dict,
    )

    torch.set_num_threads(args.threads)
    hook = "blocks.3.hook_resid_post"
    if args.sae_dir:
        model = load_sae(args.sae_dir).normalised().eval()
    else:
        sae = build_sae(config_from_dict({"architecture": "topk", "d_in": 384, "d_sae": 2048, "k": 32}), seed=0)
        model = NormalisedSAE(sae.eval(), Normalisation.identity(384))
    handle = load_host_model(source=str(minilm_path()), revision=None, device="cpu", kind="encoder")
    corpora = {
        "reference": [r["text"] for r in load_snippets(corpus_path())[: args.reference]],
        "discharge": [r["text"] for r in load_snippets(ood_path())],
    }
    rows, statistics = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, texts in corpora.items():
            wall, cpu = time.perf_counter(), time.process_time()
            capture_activations(
                handle=handle,
                texts=texts,
                hook_names=[hook],
                batch_size=64,
                max_length=96,
                device="cpu",
                out_dir=Path(tmp) / name,
                dtype=np.float16,
            )
            capture = (time.perf_counter() - wall, time.process_time() - cpu)
            store = ActivationStore.open(Path(tmp) / name, hook)
            wall, cpu = time.perf_counter(), time.process_time()
            statistics[name] = corpus_statistics(
                batches=(torch.from_numpy(b.activations) for b in store.iter_batches(batch_tokens=4096)),
                encode=model.encode,
                decode=model.decode,
            )
            encode = (time.perf_counter() - wall, time.process_time() - cpu)
            rows.append((name, len(texts), len(store), capture, encode))
        wall, cpu = time.perf_counter(), time.process_time()
        report = compare_corpora(reference=statistics["reference"], corpus=statistics["discharge"])
        compare = (time.perf_counter() - wall, time.process_time() - cpu)
    print("| corpus | snippets | tokens | capture wall / CPU | SAE pass wall / CPU |")
    print("|---|---|---|---|---|")
    for name, n, tokens, capture, encode in rows:
        print(
            f"| {name} | {n} | {tokens} | {capture[0]:.1f} s / {capture[1]:.1f} s | {encode[0]:.2f} s / "
            f"{encode[1]:.2f} s |"
        )
    print(
        f"compare: {compare[0] * 1000:.0f} ms wall; drift={report.drift} reasons={report.reasons} "
        f"divergence={report.divergence:.4f} fve {report.fve_reference:.3f} -> {report.fve_corpus:.3f}, "
        f"{len(report.flagged)} flagged (threads={args.threads})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
