"""Protected-attribute detector: which latents track race/ethnicity, sex/gender, insurance or age band,
whatever physicians labelled them. The same Pearson r as MedSAE monosemanticity
(`metrics.pearson_blocks`), between each latent's per-snippet max and each 0/1 protected tag."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inference.engine.metrics import pearson_blocks


@dataclass(frozen=True)
class ProtectedConfig:
    threshold: float = 0.3  # flag a latent whose Pearson r with a protected tag reaches this
    min_tagged: int = 5  # a tag on fewer snippets than this is not scored (r would be noise)

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError("threshold must be in (0, 1]")
        if self.min_tagged < 1:
            raise ValueError("min_tagged must be >= 1")


@dataclass(frozen=True)
class ProtectedAssociation:
    tag: str  # e.g. "SEX_GENDER:female"
    attribute: str  # the part before ":", e.g. "SEX_GENDER" (the protected rubric concept)
    r: float


def attribute_of(tag: str) -> str:
    return tag.split(":", 1)[0]


def protected_associations(
    *,
    snippet_max: np.ndarray,
    tags: np.ndarray,
    tag_names: Sequence[str],
    config: ProtectedConfig = ProtectedConfig(),
    chunk_latents: int = 1024,
) -> list[list[ProtectedAssociation]]:
    """Per latent, its associations with r >= threshold, strongest first.

    snippet_max [n_snippets, n_latents]; tags [n_snippets, n_tags] 0/1, one column per tag_names.
    Positive r only: a latent that fires less on a group is not what the flag reports.
    """
    tags = np.asarray(tags, dtype=np.float64)
    n_snippets, n_latents = snippet_max.shape
    if tags.shape != (n_snippets, len(tag_names)):
        raise ValueError(f"tags must be [n_snippets={n_snippets}, n_tags={len(tag_names)}]; got {tags.shape}")
    scored = tags.sum(axis=0) >= config.min_tagged
    out: list[list[ProtectedAssociation]] = [[] for _ in range(n_latents)]
    if n_snippets < 3 or not scored.any():
        return out
    for start, r, _norm in pearson_blocks(snippet_max=snippet_max, tags=tags, chunk_latents=chunk_latents):
        r = np.where(scored[None, :], r, 0.0)
        for row, column in zip(*np.nonzero(r >= config.threshold), strict=False):
            value = float(r[row, column])
            if math.isfinite(value):
                name = tag_names[column]
                out[start + row].append(ProtectedAssociation(tag=name, attribute=attribute_of(name), r=value))
    for associations in out:
        associations.sort(key=lambda a: -a.r)
    return out
