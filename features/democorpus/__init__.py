"""Concord's own synthetic clinical corpus (no real patients): file paths, loading and a quick slice."""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def corpus_path() -> Path:
    """The shipped chart-style snippets (JSONL)."""
    return DATA_DIR / "clinical_snippets.jsonl"


def ood_path() -> Path:
    """The shipped discharge-summary slice (JSONL), a style shift for drift audits."""
    return DATA_DIR / "discharge_ood.jsonl"


def load_snippets(path: Path | str) -> list[dict]:
    """Every record of a JSONL corpus file, in file order."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def sample_slice(n: int = 300, seed: int = 0) -> list[dict]:
    """``n`` snippets of the shipped corpus drawn without replacement, kept in file order."""
    snippets = load_snippets(corpus_path())
    if not 0 <= n <= len(snippets):
        raise ValueError(f"n must be between 0 and {len(snippets)}, got {n}")
    chosen = sorted(random.Random(seed).sample(range(len(snippets)), n))
    return [snippets[i] for i in chosen]
