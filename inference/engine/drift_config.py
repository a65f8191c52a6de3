"""The drift audit's thresholds, with no numpy or torch import: the web process validates an audit's
thresholds before it queues the job (inference/drift.py), and must not load torch to do so. The statistics
they gate are in inference/engine/drift.py and docs/algorithms.md ("Drift audit")."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the audit; every one can be set per audit (command flags, job parameters)."""

    fdr: float = 0.01  # Benjamini–Hochberg false discovery rate over the per-latent tests
    min_abs_log2_ratio: float = 1.0  # flag only rates that at least double or halve
    min_rate: float = 1e-3  # latents rarer than this in both corpora are not tested
    pseudocount: float = 0.5  # added to firing counts (and twice to token counts) in the log ratio
    divergence_threshold: float = 0.05  # Jensen–Shannon divergence (bits) of firing distributions
    fve_drop_threshold: float = 0.10  # fve_reference − fve_corpus
    flagged_share_threshold: float = 0.05  # flagged latents / latents tested
    l0_distance_threshold: float = 0.25  # total variation between the L0 histograms

    def __post_init__(self) -> None:
        if not 0 < self.fdr < 1:
            raise ValueError("fdr must be in (0, 1)")
        for name in (
            "min_abs_log2_ratio",
            "min_rate",
            "divergence_threshold",
            "fve_drop_threshold",
            "flagged_share_threshold",
            "l0_distance_threshold",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.pseudocount <= 0:
            raise ValueError("pseudocount must be > 0")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


DRIFT_CONFIG_KEYS: tuple[str, ...] = tuple(field.name for field in fields(DriftConfig))
