"""The demo's host presets: MiniLM's full demo is unchanged; Gemma's full demo captures a fixed slice,
trains fewer steps and measures CE-loss on fewer snippets, so that it builds within 10 minutes on 2 cores."""

from __future__ import annotations

import pytest

from config.demo import HOSTS, DemoSettings


def test_minilm_full_demo_keeps_the_whole_corpus_and_the_defaults():
    assert DemoSettings.for_host("minilm") == DemoSettings()
    assert DemoSettings().corpus_name == "demo-clinical" and DemoSettings().snippets is None


def test_gemma_full_demo_takes_its_preset():
    config = DemoSettings.for_host("gemma")
    preset = HOSTS["gemma"]
    assert (config.snippets, config.width, config.steps, config.ce_texts) == (1200, 2048, 500, 32)
    assert (config.snippets, config.width, config.steps, config.ce_texts) == (
        preset.snippets,
        preset.width,
        preset.steps,
        preset.ce_texts,
    )
    assert config.corpus_name == "demo-clinical-1200" and config.host_model.hook == "blocks.9.hook_resid_post"
    quick = DemoSettings.for_quick(host="gemma")
    assert (quick.corpus_name, quick.snippets, quick.ce_texts) == ("demo-clinical-quick", 300, 16)
    with pytest.raises(ValueError, match="unknown demo host"):
        DemoSettings.for_host("llama")
