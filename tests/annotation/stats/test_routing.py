"""The persistent-ambiguity rule of DESIGN §5: consensus, another round, or adjudication."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.stats.consensus import ConsensusResult
from annotation.stats.routing import ADJUDICATE, ANOTHER_ROUND, CONSENSUS, RoutingConfig, route_latent, route_latents


def _route(rounds: int, entropy: float, top: float):
    return route_latent(latent="L", rounds_with_labels=rounds, entropy=entropy, top_posterior=top)


def test_clear_latent_keeps_its_consensus_even_after_one_round():
    assert _route(1, 0.2, 0.9).decision == CONSENSUS


def test_values_on_the_thresholds_are_not_ambiguous():
    # "exceeds τ" and "below 0.6" are strict.
    assert _route(3, 0.5, 0.6).decision == CONSENSUS


def test_high_entropy_after_enough_rounds_goes_to_adjudication():
    decision = _route(2, 0.51, 0.9)
    assert decision.decision == ADJUDICATE
    assert "entropy 0.510 > 0.5" in decision.reason and "2 rounds" in decision.reason


def test_low_top_posterior_after_enough_rounds_goes_to_adjudication():
    decision = _route(2, 0.3, 0.59)
    assert decision.decision == ADJUDICATE and "top posterior 0.590 < 0.6" in decision.reason


def test_ambiguous_latent_before_min_rounds_gets_another_round():
    decision = _route(1, 0.9, 0.4)
    assert decision.decision == ANOTHER_ROUND
    assert "entropy" in decision.reason and "top posterior" in decision.reason and "1 of 2 rounds" in decision.reason


def test_custom_config_moves_the_lines():
    config = RoutingConfig(min_rounds=3, entropy_ceiling=0.3, top_posterior_floor=0.8)
    early = route_latent(latent="L", rounds_with_labels=2, entropy=0.4, top_posterior=0.9, config=config)
    late = route_latent(latent="L", rounds_with_labels=3, entropy=0.2, top_posterior=0.7, config=config)
    assert (early.decision, late.decision) == (ANOTHER_ROUND, ADJUDICATE)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_rounds", 0),
        ("min_rounds", 1.5),
        ("entropy_ceiling", 1.2),
        ("entropy_ceiling", -0.1),
        ("top_posterior_floor", 1.5),
        ("top_posterior_floor", float("nan")),
    ],
)
def test_config_rejects_out_of_range_values(field, value):
    with pytest.raises(ValueError, match=field):
        RoutingConfig(**{field: value})


def test_route_rejects_bad_measurements():
    with pytest.raises(ValueError, match="entropy"):
        _route(2, 1.5, 0.5)
    with pytest.raises(ValueError, match="top_posterior"):
        _route(2, 0.5, float("nan"))
    with pytest.raises(ValueError, match="negative"):
        _route(-1, 0.5, 0.5)


def test_route_latents_reads_a_consensus_result():
    posterior = np.array([[0.95, 0.05], [0.5, 0.5]])
    consensus = ConsensusResult(
        method="dawid-skene",
        units=("L1", "L2"),
        labels=("X", "Y"),
        raters=("a",),
        posterior=posterior,
        entropy=np.array([0.29, 1.0]),
        rater_accuracy=np.array([1.0]),
        rater_weight=np.array([1.0]),
    )
    decisions = route_latents(consensus=consensus, rounds_with_labels={"L2": 2})
    assert decisions["L1"].decision == CONSENSUS
    assert decisions["L2"].decision == ADJUDICATE
