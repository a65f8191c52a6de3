"""Pure helpers of the labelling page: where tokens lie in the original text, and the logit-effects shape."""

from __future__ import annotations

from types import SimpleNamespace

from annotation.selectors.context import _logit_effects
from annotation.selectors.labelling import token_character_spans


def test_wordpiece_tokens_are_found_in_the_original_text_with_their_case():
    text = "Former smoker, 40 pack-years; HFpEF."
    tokens = ["former", "smoke", "##r", ",", "40", "pack", "-", "years", ";", "hf", "##pe", "##f", "."]
    spans = token_character_spans(text=text, tokens=tokens)
    assert [text[a:b] for a, b in spans] == [
        "Former",
        "smoke",
        "r",
        ",",
        "40",
        "pack",
        "-",
        "years",
        ";",
        "HF",
        "pE",
        "F",
        ".",
    ]


def test_bpe_and_special_tokens_and_a_token_absent_from_the_text():
    text = "No chest pain today"
    spans = token_character_spans(text=text, tokens=["<s>", "No", "Ġchest", "Ġpain", "Ġyesterday", "Ġtoday"])
    assert spans[0] is None and spans[4] is None
    assert [text[a:b] for a, b in (spans[1], spans[2], spans[3], spans[5])] == ["No", "chest", "pain", "today"]


def test_a_match_far_ahead_is_refused_so_spans_never_skip_text():
    # "pain" occurs later, but not right after "no": taking it would shade the wrong characters.
    spans = token_character_spans(text="no fever, pain", tokens=["no", "pain"])
    assert spans == [(0, 2), None]


def test_a_window_that_starts_mid_snippet_is_found_where_it_starts():
    text = "Denies chest pain. Former smoker, quit 2010."
    spans = token_character_spans(text=text, tokens=["former", "smoke", "##r", ",", "quit"])
    assert [text[a:b] for a, b in spans] == ["Former", "smoke", "r", ",", "quit"]


def test_logit_effects_as_mining_stores_them():
    latent = SimpleNamespace(
        logit_effects={
            "raised": [{"token": " embol", "id": 7, "logit": 2.5}],
            "lowered": [{"token": "normal", "id": 9, "logit": -1.25}],
            "method": "W_dec @ W_U",
        }
    )
    assert _logit_effects(latent) == ([(" embol", 2.5)], [("normal", -1.25)])
    assert _logit_effects(SimpleNamespace(logit_effects={})) == ([], [])
    assert _logit_effects(SimpleNamespace()) == ([], [])
