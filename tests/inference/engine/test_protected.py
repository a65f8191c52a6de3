"""The protected-attribute detector: planted associations are flagged, independent data is not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from inference.engine.protected import ProtectedConfig, protected_associations

TAGS = ["SEX_GENDER:female", "RACE_ETHNICITY:black", "INSURANCE:medicaid"]


def _tags(rng, n):
    return (rng.uniform(size=(n, len(TAGS))) < 0.12).astype(np.float32)


def test_planted_associations_are_flagged_with_their_tag_and_r():
    rng = np.random.default_rng(0)
    n = 2000
    tags = _tags(rng, n)
    snippet_max = np.maximum(rng.normal(0, 1, size=(n, 40)), 0)
    snippet_max[:, 3] += 2.5 * tags[:, 0]
    snippet_max[:, 17] += 2.0 * tags[:, 2]
    found = protected_associations(snippet_max=snippet_max, tags=tags, tag_names=TAGS)
    flagged = {i: [a.tag for a in associations] for i, associations in enumerate(found) if associations}
    assert flagged == {3: ["SEX_GENDER:female"], 17: ["INSURANCE:medicaid"]}
    assert found[3][0].attribute == "SEX_GENDER"
    assert found[3][0].r == pytest.approx(pearsonr(snippet_max[:, 3], tags[:, 0]).statistic)


def test_no_flags_without_an_association_or_without_enough_tagged_snippets():
    rng = np.random.default_rng(1)
    n = 2000
    snippet_max = np.maximum(rng.normal(0, 1, size=(n, 200)), 0)
    assert not any(protected_associations(snippet_max=snippet_max, tags=_tags(rng, n), tag_names=TAGS))
    rare = np.zeros((n, 1), dtype=np.float32)
    rare[:3] = 1
    snippet_max[:3, 0] += 10  # perfectly tied to the tag, but three snippets prove nothing
    assert not any(protected_associations(snippet_max=snippet_max, tags=rare, tag_names=TAGS[:1]))
    assert any(
        protected_associations(
            snippet_max=snippet_max, tags=rare, tag_names=TAGS[:1], config=ProtectedConfig(min_tagged=3)
        )
    )
