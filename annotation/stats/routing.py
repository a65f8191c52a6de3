"""Persistent ambiguity: which latents keep their consensus, need another round, or go to a senior."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from annotation.stats.consensus import ConsensusResult

CONSENSUS = "consensus"
ANOTHER_ROUND = "another_round"
ADJUDICATE = "adjudicate"


@dataclass(frozen=True)
class RoutingConfig:
    """The persistent-ambiguity rule of DESIGN §5."""

    min_rounds: int = 2
    """R: rounds with labels a latent must have had before it may go to adjudication."""
    entropy_ceiling: float = 0.5
    """τ: a normalised posterior entropy above this is ambiguous."""
    top_posterior_floor: float = 0.6
    """A top posterior below this is ambiguous."""

    def __post_init__(self) -> None:
        if isinstance(self.min_rounds, bool) or not isinstance(self.min_rounds, int) or self.min_rounds < 1:
            raise ValueError(f"min_rounds must be a whole number of rounds ≥ 1, got {self.min_rounds!r}")
        if not 0 <= self.entropy_ceiling <= 1:
            raise ValueError(f"entropy_ceiling is a normalised entropy in [0, 1], got {self.entropy_ceiling!r}")
        if not 0 <= self.top_posterior_floor <= 1:
            raise ValueError(f"top_posterior_floor is a probability in [0, 1], got {self.top_posterior_floor!r}")


@dataclass(frozen=True)
class RoutingDecision:
    """decision is one of CONSENSUS, ANOTHER_ROUND, ADJUDICATE; reason says which test decided."""

    latent: str
    decision: str
    reason: str
    rounds_with_labels: int
    entropy: float
    top_posterior: float


def route_latent(
    *,
    latent: str,
    rounds_with_labels: int,
    entropy: float,
    top_posterior: float,
    config: RoutingConfig = RoutingConfig(),
) -> RoutingDecision:
    """Ambiguous means entropy > τ or top posterior < floor (strict, so values on the line pass);
    an ambiguous latent goes to a senior only after R rounds, before that it gets another round."""
    if rounds_with_labels < 0:
        raise ValueError("rounds_with_labels cannot be negative")
    if not 0 <= entropy <= 1 + 1e-9:
        raise ValueError(f"entropy must be normalised to [0, 1], got {entropy!r}")
    if not 0 <= top_posterior <= 1 + 1e-9:
        raise ValueError(f"top_posterior must be a probability, got {top_posterior!r}")

    problems = []
    if entropy > config.entropy_ceiling:
        problems.append(f"entropy {entropy:.3f} > {config.entropy_ceiling}")
    if top_posterior < config.top_posterior_floor:
        problems.append(f"top posterior {top_posterior:.3f} < {config.top_posterior_floor}")

    if not problems:
        decision = CONSENSUS
        reason = (
            f"entropy {entropy:.3f} ≤ {config.entropy_ceiling} and "
            f"top posterior {top_posterior:.3f} ≥ {config.top_posterior_floor}"
        )
    elif rounds_with_labels >= config.min_rounds:
        decision = ADJUDICATE
        reason = f"{' and '.join(problems)} after {rounds_with_labels} rounds (≥ {config.min_rounds})"
    else:
        decision = ANOTHER_ROUND
        reason = f"{' and '.join(problems)} after {rounds_with_labels} of {config.min_rounds} rounds"
    return RoutingDecision(latent, decision, reason, rounds_with_labels, float(entropy), float(top_posterior))


def route_latents(
    *,
    consensus: ConsensusResult,
    rounds_with_labels: Mapping[str, int],
    config: RoutingConfig = RoutingConfig(),
) -> dict[str, RoutingDecision]:
    """route_latent for every unit of a consensus result; latents missing from the round count have 0 rounds."""
    top = np.max(consensus.posterior, axis=1)
    return {
        unit: route_latent(
            latent=unit,
            rounds_with_labels=int(rounds_with_labels.get(unit, 0)),
            entropy=float(min(max(entropy, 0.0), 1.0)),
            top_posterior=float(min(max(top_posterior, 0.0), 1.0)),
            config=config,
        )
        for unit, entropy, top_posterior in zip(consensus.units, consensus.entropy, top, strict=False)
    }
