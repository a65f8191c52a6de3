"""Test–retest kappa, rationale learnability and the combined vote weight."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.stats.reliability import (
    MASK,
    Rationale,
    combine_weights,
    mask_concept_terms,
    rater_weights,
    rationale_learnability,
    test_retest_by_rater,
    test_retest_kappa,
)
from annotation.stats.tables import ratings_from_rows

CONCEPT_TERMS = {
    "PNA": ["pneumonia", "lung infection"],
    "CHF": ["heart failure", "CHF"],
    "DM": ["diabetes", "diabetes mellitus"],
}
EVIDENCE = {
    "PNA": ["consolidation", "infiltrate", "productive cough", "sputum culture", "crackles", "air bronchogram"],
    "CHF": ["pitting edema", "elevated BNP", "orthopnea", "reduced ejection fraction", "JVD", "furosemide"],
    "DM": ["HbA1c", "fasting glucose", "insulin", "metformin", "polyuria", "hyperglycemia"],
}
BOILERPLATE = [
    "the highlighted tokens show a consistent pattern across the examples",
    "activations are strongest on the tokens shown, consistent with the label",
    "clear pattern in the top examples and the quantile groups",
]


def test_test_retest_kappa_of_known_pairs():
    # 2×2 Cohen example [[20, 5], [10, 15]] read as first vs repeat judgment → 0.40.
    first = ["y"] * 25 + ["n"] * 25
    repeat = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    result = test_retest_kappa(first=first, repeat=repeat, rater="r1")
    assert result.kappa == pytest.approx(0.40) and result.agreement == pytest.approx(0.70)
    assert result.n_pairs == 50 and result.reason is None


def test_test_retest_refuses_too_few_pairs():
    result = test_retest_kappa(first=["y", "n"], repeat=["y", "n"], min_pairs=5)
    assert result.kappa is None and result.n_pairs == 2 and "fewer than the 5" in result.reason


def test_test_retest_refuses_undefined_kappa():
    result = test_retest_kappa(first=["y"] * 6, repeat=["y"] * 6)
    assert result.kappa is None and result.agreement == 1.0 and "undefined" in result.reason


def test_test_retest_by_rater_reads_the_repeats():
    units = [f"u{i}" for i in range(6)] * 2 + ["u0"]
    raters = ["a"] * 12 + ["b"]
    values = ["X", "Y", "X", "Y", "X", "Y", "X", "Y", "X", "Y", "Y", "Y", "X"]
    is_repeat = [False] * 6 + [True] * 6 + [False]
    results = test_retest_by_rater(
        ratings=ratings_from_rows(units=units, raters=raters, values=values, is_repeat=is_repeat), min_pairs=5
    )
    # Rater a: 5 of 6 repeats agree; table [[3, 0], [1, 2]] → kappa (5/6 − 1/2) / (1/2) = 2/3.
    assert results["a"].kappa == pytest.approx(2 / 3)
    assert results["b"].kappa is None and results["b"].n_pairs == 0


def test_mask_concept_terms_whole_words_case_insensitive():
    text = "Pneumonia? Lung infection, not pneumonias; see CHF and pneumonia."
    masked = mask_concept_terms(text=text, terms=CONCEPT_TERMS["PNA"])
    assert masked == f"{MASK}? {MASK}, not pneumonias; see CHF and {MASK}."
    assert mask_concept_terms(text="diabetes mellitus type 2", terms=CONCEPT_TERMS["DM"]) == f"{MASK} type 2"


def _rationales(seed: int = 0, evidence_raters: tuple[str, ...] = ("e1", "e2", "e3")):
    """Evidence-citing raters, one boilerplate writer and one who only names the concept, all on the same
    24 latents with the right concept."""
    rng = np.random.default_rng(seed)
    concepts = list(EVIDENCE)
    latents = [(f"L{i}", concepts[i % 3]) for i in range(24)]
    items = []
    for latent, concept in latents:
        for rater in evidence_raters:
            words = rng.choice(EVIDENCE[concept], size=3, replace=False)
            items.append(Rationale(latent, rater, concept, f"{CONCEPT_TERMS[concept][0]}: {', '.join(words)}"))
        items.append(Rationale(latent, "boiler", concept, str(rng.choice(BOILERPLATE))))
        items.append(Rationale(latent, "namer", concept, f"obviously {CONCEPT_TERMS[concept][0]}"))
    return items


def test_learnability_ranks_evidence_above_boilerplate():
    results = rationale_learnability(rationales=_rationales(), concept_terms=CONCEPT_TERMS, n_folds=3, seed=0)
    evidence = results["e1"]
    print(
        f"\nlearnability kappa: evidence {evidence.kappa:.2f} (lift {evidence.lift:+.2f}), "
        f"boilerplate {results['boiler'].kappa:.2f} (lift {results['boiler'].lift:+.2f}), "
        f"name only {results['namer'].kappa:.2f}"
    )
    assert evidence.kappa > 0.8 and evidence.lift > 0.4
    assert results["boiler"].kappa < 0.2 and results["namer"].kappa < 0.2
    assert evidence.n_items == 24


def test_learnability_refuses_too_little_data():
    items = _rationales(evidence_raters=("e1", "e2"))
    few = [item for item in items if item.rater == "e2" or (item.rater == "e1" and item.latent in {"L0", "L1", "L2"})]
    result = rationale_learnability(rationales=few, concept_terms=CONCEPT_TERMS, n_folds=2)["e1"]
    assert result.kappa is None and "fewer than the 5" in result.reason
    one_concept = [item for item in items if item.concept == "PNA"]
    result = rationale_learnability(rationales=one_concept, concept_terms=CONCEPT_TERMS)["e1"]
    assert result.kappa is None and "fewer than 2 concepts" in result.reason


def test_learnability_never_trains_on_the_held_out_latents():
    # If each latent were labelled by only the rater under test plus others on the *same* latents, and only
    # same-latent rationales carried the answer, the grouped split must leave nothing to learn from.
    items = []
    for index in range(12):
        concept = ["PNA", "CHF"][index % 2]
        code_word = f"zq{index}"  # a word unique to this latent, shared by everyone who labels it
        items.append(Rationale(f"L{index}", "target", concept, f"{code_word} pattern"))
        items.append(Rationale(f"L{index}", "other", concept, f"{code_word} pattern"))
    result = rationale_learnability(rationales=items, concept_terms=CONCEPT_TERMS)["target"]
    assert result.kappa is None or result.kappa < 0.5


def test_combine_weights_formula_and_missing_values():
    assert combine_weights(test_retest=1.0, learnability=1.0) == pytest.approx(1.0)
    assert combine_weights(test_retest=-0.3, learnability=0.0) == pytest.approx(0.05)
    assert combine_weights(test_retest=0.6, learnability=None) == pytest.approx(0.05 + 0.95 * (0.6 + 0.5) / 2)
    assert combine_weights(test_retest=None, learnability=None) == pytest.approx(0.05 + 0.95 * 0.5)
    assert combine_weights(test_retest=0.8, learnability=0.4) > combine_weights(test_retest=0.4, learnability=0.4)
    with pytest.raises(ValueError, match="floor"):
        combine_weights(test_retest=0.5, learnability=0.5, floor=0.0)


def test_rater_weights_combine_both_measurements():
    items = [item for item in _rationales(evidence_raters=("e1", "e2")) if item.rater != "namer"]
    units = [item.latent for item in items]
    raters = [item.rater for item in items]
    values = [item.concept for item in items]
    ratings = ratings_from_rows(units=units, raters=raters, values=values, extra={"rationale": [i.text for i in items]})
    weights = rater_weights(ratings=ratings, concept_terms=CONCEPT_TERMS, n_folds=2)
    assert weights["e1"].test_retest.kappa is None  # no repeats in these rows
    assert weights["e1"].weight > weights["boiler"].weight
    assert all(0 < weight.weight <= 1 for weight in weights.values())
