"""In Chromium, the labelling page as issue 14 asked: concept search ranking, draft autosave and the
leave warning, guidelines at the top, original text with per-token shading, activation values by
keyboard, the histogram's axes, and the latent's context (neighbours, logit effects)."""

from __future__ import annotations

import numpy as np
import pytest

from accounts.models import Role
from annotation import services
from annotation.models import Assignment, Label
from annotation.services import ConceptSpec
from features.models import Latent, LatentExample
from tests import factories
from tests.annotation import e2e, worlds
from tests.annotation.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEARCH_CONCEPTS = [
    ConceptSpec("CARDIO", "Cardiovascular"),
    ConceptSpec("HF", "Heart failure", "CARDIO", "Reduced or preserved ejection fraction", ("HFpEF", "HFrEF", "CHF")),
    ConceptSpec("PE", "Pulmonary embolism", "CARDIO", "Clot in the pulmonary arteries", ("pulmonary emboli",)),
    ConceptSpec("PNA", "Pneumonia", "", "Infection of the lung parenchyma", ("CAP", "lobar pneumonia")),
]
SNIPPET = "Former smoker, 40 pack-years; HFpEF with EF 55%."


def _world(*, blind: bool = True, kind: str = "calibration"):
    own = factories.institution("own")
    coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own, username="coord-dee")
    physician = factories.user(role=Role.PHYSICIAN, institution_obj=own, username="dr-ada")
    sae = worlds.sae_with_examples(n_latents=3, snippet_text=lambda i: SNIPPET)
    example = LatentExample.objects.filter(latent__sae=sae, latent__index=0, kind="top", rank=0).first()
    # Uncased WordPiece pieces of SNIPPET, as the demo's MiniLM stores them.
    example.tokens = [
        "former",
        "smoke",
        "##r",
        ",",
        "40",
        "pack",
        "-",
        "years",
        ";",
        "hf",
        "##pe",
        "##f",
        "with",
        "ef",
        "55",
        "%",
        ".",
    ]
    example.activations = [0.0, 2.0, 4.0, 0.0, 0.0, 1.0, 0.0, 0.5, 0.0, 3.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    example.max_activation = 4.0
    example.save()
    Latent.objects.filter(sae=sae).update(max_activation=5.0)
    version = services.rubric_create(
        name="search rubric",
        concepts=SEARCH_CONCEPTS,
        guidelines="\n".join(f"Guideline paragraph {i}: read the peak token first." for i in range(80)),
        by=coordinator,
    )
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=version,
        institutions=[own],
        raters_list=[physician],
        overlap=1,
        blind=blind,
        kind=kind,
    )
    return {"round": round_, "sae": sae, "physician": physician, "coordinator": coordinator}


def _first_item(page, base, round_) -> str:
    first = Assignment.objects.filter(round=round_).order_by("position").first()
    page.goto(f"{base}/rounds/{round_.pk}/items/{first.position}/")
    page.wait_for_selector("#label-form")
    return page.url


def test_concept_search_ranks_exact_code_first_and_guidelines_open_at_top(postgres, live_server, browser_page):
    world = _world()
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "dr-ada")
    _first_item(page, base, world["round"])
    page.keyboard.press("/")
    page.keyboard.type("PE")
    page.keyboard.press("Enter")
    assert page.locator("input[name=concept_code]:checked").get_attribute("value") == "PE"
    # Then a name prefix beats a synonym, and a synonym still finds its concept.
    for query, expected in (("pneu", "PNA"), ("hfpef", "HF"), ("CAP", "PNA")):
        page.keyboard.press("Escape")
        page.keyboard.press("/")
        page.keyboard.type(query)
        page.keyboard.press("Enter")
        assert page.locator("input[name=concept_code]:checked").get_attribute("value") == expected, query
    # Synonyms and descriptions are shown to the rater in the guidelines.
    page.keyboard.press("Escape")
    page.keyboard.press("g")
    dialog = page.locator("#guidelines")
    assert dialog.is_visible()
    assert dialog.evaluate("d => d.scrollTop") == 0
    assert page.get_by_text("Guideline paragraph 0:").is_visible()
    assert "HFpEF" in dialog.inner_text() and "Clot in the pulmonary arteries" in dialog.inner_text()
    screenshot(page, "item-guidelines-top")


def test_draft_is_kept_restored_and_cleared_and_leaving_asks_first(postgres, live_server, browser_page):
    world = _world()
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "dr-ada")
    first_url = _first_item(page, base, world["round"])
    page.keyboard.press("r")
    page.keyboard.type("Peaks on the r of smoker and on HFpEF.")
    page.keyboard.press("Escape")
    page.keyboard.press("3")
    # `j` asks before leaving unsaved work; dismissing stays on the item with the text in place.
    page.keyboard.press("j")
    assert page.dialogs and "not saved" in page.dialogs[-1]
    assert page.url == first_url
    assert page.locator("#id_rationale").input_value() == "Peaks on the r of smoker and on HFpEF."
    # Accepting leaves; coming back restores the draft from this browser.
    page.accept_dialogs = True
    with page.expect_navigation():
        page.keyboard.press("j")
    assert page.url != first_url
    page.goto(first_url)
    assert page.locator("#draft-notice").is_visible()
    assert page.locator("#id_rationale").input_value() == "Peaks on the r of smoker and on HFpEF."
    assert page.locator("input[name=confidence]:checked").get_attribute("value") == "3"
    # Saving clears the draft: the next visit shows the saved label and no draft notice.
    page.keyboard.press("/")
    page.keyboard.type("HF")
    page.keyboard.press("Enter")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    assert Label.objects.filter(assignment__round=world["round"]).count() == 1
    page.goto(first_url)
    assert page.locator("#draft-notice").is_hidden()
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('concord-draft')).length") == 0


def test_snippet_shows_original_text_with_values_by_keyboard_and_histogram_axes(postgres, live_server, browser_page):
    world = _world()
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "dr-ada")
    assignment = Assignment.objects.get(round=world["round"], latent__index=0, is_repeat=False)
    page.goto(f"{base}/rounds/{world['round'].pk}/items/{assignment.position}/")
    page.wait_for_selector("#label-form")
    snippets = page.locator("#top-examples .snip").all_inner_texts()
    assert any(SNIPPET in text for text in snippets), snippets
    assert not any("smoke r" in text for text in snippets)
    # "smoker" is one word whose characters are shaded per token: "smoke" and "r" are two marks.
    ours = page.locator("#top-examples .snip").filter(has=page.locator(".tok[data-act='2.000']"))
    assert SNIPPET in ours.inner_text()
    marks = ours.locator(".tok[data-act]")
    assert marks.all_inner_texts()[:2] == ["smoke", "r"]
    # Keyboard: Tab reaches an active token, which shows its value visibly and to screen readers.
    marks.first.focus()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "smoke, activation 2.000"
    tooltip = page.evaluate("getComputedStyle(document.activeElement, '::after').content")
    assert tooltip == '"2.000"'
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "r"
    # A labelling item withholds the figures a hidden repeat would be recognised by (issue 9)...
    assert page.locator("#figures-hidden").is_visible() and page.locator("#summary").count() == 0
    # ...the latent's page keeps them: the histogram has axes, activation along x with tick values,
    # token counts along y.
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=world["physician"].profile.institution)
    page.context.clear_cookies()
    e2e.log_in(page, base, researcher.username)
    page.goto(f"{base}/labelled-latents/{assignment.latent_id}/")
    histogram = page.locator("#summary svg.histogram")
    assert "activation" in histogram.text_content() and "tokens" in histogram.text_content()
    assert histogram.locator("text").count() >= 7
    screenshot(page, "item-original-text")


def _write_decoder(tmp_path, sae) -> None:
    """A decoder whose latent 0 points almost along latent 2 and away from latent 1."""
    from safetensors.numpy import save_file

    decoder = np.array([[1.0, 0.0, 0.0], [-1.0, 0.2, 0.0], [0.9, 0.1, 0.0]], dtype=np.float32)
    directory = tmp_path / "sae"
    directory.mkdir()
    save_file({"W_dec": decoder, "W_enc": decoder.T.copy()}, str(directory / "sae_weights.safetensors"))
    sae.artifact_uri = str(directory)
    sae.save(update_fields=["artifact_uri"])


def test_context_shows_neighbours_and_logit_effects_except_in_blind_calibration(
    postgres, live_server, browser_page, tmp_path
):
    world = _world(blind=False, kind="production")
    sae = world["sae"]
    _write_decoder(tmp_path, sae)
    from annotation.models import PLATFORM_CONSENSUS_METHOD, Consensus

    neighbour = Latent.objects.get(sae=sae, index=2)
    Latent.objects.filter(pk=neighbour.pk).update(status=Latent.Status.CONSENSUS)
    Consensus.objects.create(
        latent=neighbour,
        sae=sae,
        method=PLATFORM_CONSENSUS_METHOD,
        posterior={"PE": 0.9},
        map_concept="PE",
        entropy=0.1,
        n_labels=3,
    )
    # Latent 1's SAE-wide consensus is still moving (its round is not settled): a rater does not see it.
    Consensus.objects.create(
        latent=Latent.objects.get(sae=sae, index=1),
        sae=sae,
        method=PLATFORM_CONSENSUS_METHOD,
        posterior={"PNA": 0.6},
        map_concept="PNA",
        entropy=0.7,
        n_labels=2,
    )
    latent = Latent.objects.get(sae=sae, index=0)
    latent.logit_effects = {
        "raised": [{"token": "embol", "id": 7, "logit": 2.5}],
        "lowered": [{"token": "normal", "id": 9, "logit": -1.5}],
        "method": "W_dec @ W_U",
    }
    latent.save(update_fields=["logit_effects"])
    page, base = browser_page, live_server.url
    e2e.log_in(page, base, "dr-ada")
    assignment = Assignment.objects.get(round=world["round"], latent__index=0, is_repeat=False)
    page.goto(f"{base}/rounds/{world['round'].pk}/items/{assignment.position}/")
    rows = page.locator("#neighbours tr").all_inner_texts()
    assert rows[1].split("\t")[:2] == ["2", "0.994"], rows
    assert "Pulmonary embolism" in rows[1]
    assert rows[2].split("\t")[0] == "1" and "Pneumonia" not in rows[2] and "PNA" not in rows[2]
    assert "embol" in page.locator("#context-logit-effects").inner_text()
    assert "normal" in page.locator("#context-logit-effects").inner_text()
    screenshot(page, "item-context")

    # In a blind calibration round nothing there could anchor the rater.
    blind = worlds.make_round(
        by=world["coordinator"],
        sae=sae,
        version=world["round"].rubric_version,
        institutions=list(world["round"].institutions.all()),
        raters_list=[world["physician"]],
        overlap=1,
    )
    assignment = Assignment.objects.get(round=blind, latent__index=0, is_repeat=False)
    page.goto(f"{base}/rounds/{blind.pk}/items/{assignment.position}/")
    assert page.locator("#context-hidden").is_visible()
    assert (
        page.locator("#neighbours").count() == 0
        and "Pulmonary embolism" not in page.locator("#latent-context").inner_text()
    )

    # A researcher's latent page shows the neighbours with every consensus label.
    factories.user(role=Role.RESEARCHER, institution_obj=world["round"].institutions.first(), username="res-eve")
    page.context.clear_cookies()
    e2e.log_in(page, base, "res-eve")
    page.goto(f"{base}/labelled-latents/{latent.pk}/")
    rows = page.locator("#neighbours tr").all_inner_texts()
    assert "Pulmonary embolism" in rows[1] and "Pneumonia" in rows[2], rows
