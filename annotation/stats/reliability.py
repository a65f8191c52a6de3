"""Per-rater reliability: test–retest kappa, rationale learnability, and the vote weight built from both."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from annotation.stats.agreement import cohen_kappa_from_table
from annotation.stats.tables import Ratings, repeat_pairs

MASK = "_"


@dataclass(frozen=True)
class TestRetest:
    """Cohen's kappa of a rater with themself over their hidden repeats; None with a reason when it
    cannot be estimated honestly."""

    __test__ = False  # a dataclass, not a pytest test class

    rater: str
    kappa: float | None
    agreement: float | None
    n_pairs: int
    reason: str | None = None


@dataclass(frozen=True)
class Rationale:
    """One label's stated reason: which latent, who, which concept code, and the free text."""

    latent: str
    rater: str
    concept: str
    text: str


@dataclass(frozen=True)
class Learnability:
    """How well other raters' rationales let a classifier recover this rater's concepts.

    kappa: Cohen's kappa of the predictions against the rater's concepts; lift: accuracy minus the
    accuracy of always predicting the training majority. None with a reason when too little data.
    """

    rater: str
    kappa: float | None
    accuracy: float | None
    baseline_accuracy: float | None
    lift: float | None
    n_items: int
    reason: str | None = None


def test_retest_kappa(
    *, first: Sequence[object], repeat: Sequence[object], rater: str = "", min_pairs: int = 5
) -> TestRetest:
    """Self-agreement over (first judgment, repeat judgment) pairs of one rater."""
    if len(first) != len(repeat):
        raise ValueError("first and repeat must pair up one to one")
    n_pairs = len(first)
    if n_pairs < min_pairs:
        return TestRetest(rater, None, None, n_pairs, f"{n_pairs} repeat pairs, fewer than the {min_pairs} needed")
    categories = sorted({*first, *repeat}, key=str)
    index = {category: position for position, category in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    for a, b in zip(first, repeat, strict=False):
        table[index[a], index[b]] += 1
    result = cohen_kappa_from_table(table=table)
    if np.isnan(result.kappa):
        return TestRetest(
            rater, None, result.observed_agreement, n_pairs, "kappa undefined: one concept throughout the repeat pairs"
        )
    return TestRetest(rater, result.kappa, result.observed_agreement, n_pairs)


# Pytest would otherwise collect this function from test modules that import it.
test_retest_kappa.__test__ = False


def test_retest_by_rater(*, ratings: Ratings, min_pairs: int = 5) -> dict[str, TestRetest]:
    """test_retest_kappa for every rater, from the repeats recorded in `ratings.occasion`."""
    return {
        rater: test_retest_kappa(
            first=pairs.first.tolist(), repeat=pairs.repeat.tolist(), rater=rater, min_pairs=min_pairs
        )
        for rater, pairs in repeat_pairs(ratings=ratings).items()
    }


test_retest_by_rater.__test__ = False


def mask_concept_terms(*, text: str, terms: Sequence[str]) -> str:
    """Replace each term (case-insensitive, whole words) by a neutral mask, longest term first so
    that "heart failure" is masked before "failure"."""
    ordered = sorted({term.strip() for term in terms if term and term.strip()}, key=len, reverse=True)
    if not ordered:
        return text
    # Look-arounds instead of \b so that terms starting or ending in punctuation ("C. diff") still match.
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(term) for term in ordered) + r")(?!\w)", re.IGNORECASE)
    return pattern.sub(MASK, text)


def _classifier(*, seed: int):
    # Imported here: scikit-learn's pipeline machinery is heavy and only this function needs it.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, lowercase=True),
    )
    return make_pipeline(features, LogisticRegression(max_iter=1000, random_state=seed))


def rationale_learnability(
    *,
    rationales: Sequence[Rationale],
    concept_terms: Mapping[str, Sequence[str]],
    min_items: int = 5,
    n_folds: int = 5,
    seed: int = 0,
) -> dict[str, Learnability]:
    """Per rater: train on OTHER raters' (masked rationale → concept) pairs, predict this rater's.

    `concept_terms` maps a concept code to its name and synonyms; each rationale has its own
    concept's terms masked, so the classifier must learn from the stated evidence, not from the
    rater naming the answer. The rater's latents are split into folds; for each fold the training
    set excludes every item on those latents, so evidence about the same latent never leaks from
    another rater's rationale into the prediction.
    """
    if n_folds < 1:
        raise ValueError("n_folds must be at least 1")
    texts = [mask_concept_terms(text=item.text, terms=concept_terms.get(item.concept, ())) for item in rationales]
    concepts = np.array([item.concept for item in rationales], dtype=object)
    latents = np.array([item.latent for item in rationales], dtype=object)
    raters = np.array([item.rater for item in rationales], dtype=object)
    rng = np.random.default_rng(seed)

    results: dict[str, Learnability] = {}
    for rater in dict.fromkeys(item.rater for item in rationales):
        mine = np.flatnonzero(raters == rater)
        others = np.flatnonzero(raters != rater)
        if mine.size < min_items:
            reason = f"{mine.size} rationales, fewer than the {min_items} needed"
            results[rater] = Learnability(rater, None, None, None, None, int(mine.size), reason)
            continue
        if np.unique(concepts[others]).size < 2:
            reason = "other raters' rationales cover fewer than 2 concepts"
            results[rater] = Learnability(rater, None, None, None, None, int(mine.size), reason)
            continue
        # One BLAS thread: these fits are tiny, and L-BFGS's threaded calls cost 5× more than they save.
        with threadpool_limits(limits=1):
            predicted, baseline = _predict_by_latent_folds(
                texts=texts,
                concepts=concepts,
                latents=latents,
                mine=mine,
                others=others,
                n_folds=n_folds,
                rng=rng,
                seed=seed,
            )
        results[rater] = _score(
            rater=rater, truth=concepts[mine], predicted=predicted, baseline=baseline, min_items=min_items
        )
    return results


def _predict_by_latent_folds(
    *,
    texts: Sequence[str],
    concepts: np.ndarray,
    latents: np.ndarray,
    mine: np.ndarray,
    others: np.ndarray,
    n_folds: int,
    rng: np.random.Generator,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted concept and training-majority concept for each of the rater's items (None: no training data)."""
    my_latents = rng.permutation(np.unique(latents[mine]))
    predicted = np.full(mine.size, None, dtype=object)
    baseline = np.full(mine.size, None, dtype=object)
    for fold in np.array_split(my_latents, min(n_folds, my_latents.size)):
        held_out = np.isin(latents[mine], fold)
        train = others[~np.isin(latents[others], fold)]
        if train.size == 0:
            continue
        labels, counts = np.unique(concepts[train], return_counts=True)
        baseline[held_out] = labels[np.argmax(counts)]
        if labels.size < 2:
            predicted[held_out] = labels[0]
            continue
        model = _classifier(seed=seed).fit([texts[i] for i in train], concepts[train])
        predicted[held_out] = model.predict([texts[i] for i in mine[held_out]])
    return predicted, baseline


def _score(
    *, rater: str, truth: np.ndarray, predicted: np.ndarray, baseline: np.ndarray, min_items: int
) -> Learnability:
    scored = np.array([label is not None for label in predicted])
    n_scored = int(scored.sum())
    if n_scored < min_items:
        reason = f"only {n_scored} rationales had other raters' training data on other latents; {min_items} needed"
        return Learnability(rater, None, None, None, None, n_scored, reason)
    truth, guess = truth[scored], predicted[scored]
    accuracy = float(np.mean(truth == guess))
    baseline_accuracy = float(np.mean(truth == baseline[scored]))
    kappa = _kappa(truth=truth, guess=guess)
    reason = None
    if kappa is None:
        reason = "kappa undefined: the rater's concepts and the predictions are one single concept"
    return Learnability(rater, kappa, accuracy, baseline_accuracy, accuracy - baseline_accuracy, n_scored, reason)


def _kappa(*, truth: np.ndarray, guess: np.ndarray) -> float | None:
    categories = sorted({*truth.tolist(), *guess.tolist()}, key=str)
    index = {category: position for position, category in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    np.add.at(table, ([index[t] for t in truth], [index[g] for g in guess]), 1)
    kappa = cohen_kappa_from_table(table=table).kappa
    return None if np.isnan(kappa) else float(kappa)


def combine_weights(
    *,
    test_retest: float | None,
    learnability: float | None,
    floor: float = 0.05,
    neutral: float = 0.5,
) -> float:
    """Vote weight in [floor, 1] ⊂ (0, 1] from two kappas.

    w = floor + (1 − floor) · (q(test_retest) + q(learnability)) / 2, with q(κ) = clip(κ, 0, 1): a
    kappa at or below chance earns nothing, perfect earns everything. A missing score (None, e.g.
    too few repeats) counts as `neutral` instead of being guessed; the floor keeps every rater's
    vote alive, so Dawid–Skene can still learn that a low-weight rater is in fact reliable.
    """
    if not 0 < floor <= 1:
        raise ValueError("floor must lie in (0, 1]")
    if not 0 <= neutral <= 1:
        raise ValueError("neutral must lie in [0, 1]")
    scores = [
        neutral if score is None or np.isnan(score) else float(np.clip(score, 0.0, 1.0))
        for score in (test_retest, learnability)
    ]
    return floor + (1 - floor) * (scores[0] + scores[1]) / 2


@dataclass(frozen=True)
class RaterWeight:
    """A rater's two reliability measurements and the vote weight combined from them."""

    rater: str
    test_retest: TestRetest
    learnability: Learnability | None
    weight: float


def rater_weights(
    *,
    ratings: Ratings,
    rationale_column: str = "rationale",
    concept_terms: Mapping[str, Sequence[str]] | None = None,
    min_pairs: int = 5,
    min_items: int = 5,
    n_folds: int = 5,
    seed: int = 0,
) -> dict[str, RaterWeight]:
    """Test–retest from the repeats in `ratings`, learnability from `ratings.extra[rationale_column]`
    when present (first judgments only, so a repeat does not train on its own original), combined."""
    test_retest = test_retest_by_rater(ratings=ratings, min_pairs=min_pairs)
    learnability: dict[str, Learnability] = {}
    texts = ratings.extra.get(rationale_column)
    if texts is not None:
        first = np.flatnonzero(ratings.occasion == 0)
        items = [
            Rationale(
                latent=ratings.units[ratings.unit_index[i]],
                rater=ratings.raters[ratings.rater_index[i]],
                concept=str(ratings.categories[ratings.category_index[i]]),
                text=texts[i],
            )
            for i in first
        ]
        learnability = rationale_learnability(
            rationales=items, concept_terms=concept_terms or {}, min_items=min_items, n_folds=n_folds, seed=seed
        )
    weights = {}
    for rater in ratings.raters:
        learned = learnability.get(rater)
        weights[rater] = RaterWeight(
            rater=rater,
            test_retest=test_retest[rater],
            learnability=learned,
            weight=combine_weights(
                test_retest=test_retest[rater].kappa, learnability=None if learned is None else learned.kappa
            ),
        )
    return weights


@dataclass(frozen=True)
class TestRetestInterval:
    """A self-agreement estimate with its interval and the number of repeat pairs it rests on.

    kappa = (A − p_e) / (1 − p_e) with A the (shrunk, for a rater) share of repeat pairs given the same
    concept both times and p_e the chance agreement of the scope's label distribution; `low`/`high`
    bound it at the requested confidence. None with a reason when no pair exists or p_e is 1."""

    __test__ = False

    rater: str
    kappa: float | None
    low: float | None
    high: float | None
    agreement: float | None
    n_pairs: int
    n_agreeing: int
    reason: str | None = None


@dataclass(frozen=True)
class PooledTestRetest:
    """Round (or SAE) test–retest: the pooled estimate over every rater's pairs and each rater's own,
    shrunk toward the pool. prior_pairs is the pool's weight in a rater's estimate, in pairs."""

    __test__ = False

    pooled: TestRetestInterval
    raters: dict[str, TestRetestInterval]
    chance_agreement: float | None
    prior_pairs: float
    confidence: float


def test_retest_shrunk(*, ratings: Ratings, prior_pairs: float = 4.0, confidence: float = 0.95) -> PooledTestRetest:
    """Test–retest that computes from the first repeat pair on (issue: "—" with fewer than 5 pairs).

    Each repeat pair agrees or not; the pooled agreement A = a / n over all n pairs gets the Jeffreys interval
    (Beta(a + ½, n − a + ½) quantiles, a = agreeing pairs; Brown, Cai & DasGupta 2001 show it keeps
    near-nominal coverage down to a handful of trials). A rater's agreement is the posterior mean of a
    beta-binomial with the prior Beta(m·A + ½, m·(1 − A) + ½), m = `prior_pairs`: with few pairs the
    estimate sits near the pool and its interval is wide; with many pairs it follows the rater's own.
    m = 4 lets a rater's own pairs outweigh the pool from the fifth pair on — the five pairs the
    unshrunk kappa asked for. Chance agreement p_e = Σ_k p_k² comes from every judgment in `ratings`
    (Scott's π convention), so it is defined with a single pair, unlike Cohen's product of the two
    occasions' marginals. Agreement maps to kappa monotonically, so intervals map endpoint by endpoint.
    Pairs are treated as independent (a rater's pairs share the rater: the pooled interval is narrow
    when one rater supplies most pairs).
    """
    from scipy.stats import beta as beta_distribution

    if prior_pairs < 0:
        raise ValueError("prior_pairs must be non-negative")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie in (0, 1)")
    tail = (1 - confidence) / 2
    pairs = repeat_pairs(ratings=ratings)
    counts = np.bincount(ratings.category_index, minlength=len(ratings.categories)).astype(float)
    chance = float(((counts / counts.sum()) ** 2).sum()) if counts.sum() else None

    def to_kappa(agreement: float) -> float:
        return (agreement - chance) / (1 - chance)

    def interval(*, rater: str, n: int, agreeing: int, a: float, b: float, raw: bool = False) -> TestRetestInterval:
        if n == 0:
            return TestRetestInterval(rater, None, None, None, None, 0, 0, "no repeat pairs")
        if chance is None or chance >= 1:
            return TestRetestInterval(
                rater,
                None,
                None,
                None,
                agreeing / n,
                n,
                agreeing,
                "kappa undefined: one concept throughout the scope's labels",
            )
        mean = agreeing / n if raw else a / (a + b)
        low, high = (float(v) for v in beta_distribution.ppf([tail, 1 - tail], a, b))
        if raw:  # Brown, Cai & DasGupta's boundary rule for the Jeffreys interval
            low, high = (0.0 if agreeing == 0 else low), (1.0 if agreeing == n else high)
        return TestRetestInterval(rater, to_kappa(mean), to_kappa(low), to_kappa(high), mean, n, agreeing)

    per_rater = {rater: (int(p.first.size), int((p.first == p.repeat).sum())) for rater, p in pairs.items()}
    n_total = sum(n for n, _ in per_rater.values())
    agreeing_total = sum(a for _, a in per_rater.values())
    pooled = interval(
        rater="", n=n_total, agreeing=agreeing_total, a=agreeing_total + 0.5, b=n_total - agreeing_total + 0.5, raw=True
    )
    pool = agreeing_total / n_total if n_total else 0.0
    raters = {
        rater: interval(
            rater=rater,
            n=n,
            agreeing=agreeing,
            a=prior_pairs * pool + 0.5 + agreeing,
            b=prior_pairs * (1 - pool) + 0.5 + n - agreeing,
        )
        for rater, (n, agreeing) in per_rater.items()
    }
    return PooledTestRetest(
        pooled=pooled, raters=raters, chance_agreement=chance, prior_pairs=prior_pairs, confidence=confidence
    )


test_retest_shrunk.__test__ = False
