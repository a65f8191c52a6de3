"""The demo corpus: deterministic generation, shipped files in step with the code, truthful concept tags."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import statistics
from collections import Counter
from pathlib import Path

import pytest

from features import democorpus
from features.democorpus import generator
from features.democorpus.generator import CONCEPTS, GROUPS

PACKAGE = Path(democorpus.__file__).resolve().parent
SECTIONS = {"hpi", "assessment_plan", "labs", "imaging", "medications"}
INSTITUTIONS = {"ALDER", "BIRCH", "CEDAR"}
CODES = {concept.code for concept in CONCEPTS}

# The test's own reading of the text, independent of the generator's frames: NegEx-style cues that
# act on a mention at most WINDOW words after them, within one clause.
NEGATION_CUES = ("no", "denies", "denied", "negative for", "without", "not", "never", "free of", "absence of")
UNCERTAINTY_CUES = (
    "possible",
    "possibly",
    "cannot rule out",
    "cannot exclude",
    "r/o",
    "rule out",
    "concern for",
    "question of",
    "questionable",
    "suspected",
    "suspicious for",
    "differential includes",
    "may represent",
    "evaluate for",
)
WINDOW = 6
CLAUSE_BREAK = re.compile(r"[.;!?](?=\s|$)|\bbut\b|\bhowever\b", re.IGNORECASE)
# Discharge prose tells a past-tense story that ends in discharge; chart snippets rarely do either.
NARRATIVE_CUES = (re.compile(r"\bwas\b"), re.compile(r"\bdischarg", re.IGNORECASE))


def _bounded(term: str, flags: int = 0) -> re.Pattern:
    return re.compile(r"(?<![A-Za-z0-9])" + re.escape(term) + r"(?![A-Za-z0-9])", flags)


def _form_pattern(form: str) -> re.Pattern:
    # Forms written in capitals only ("PE", "CAP") are abbreviations: match their case exactly.
    return _bounded(form, 0 if form.upper() == form else re.IGNORECASE)


MENTIONS = {c.code: [_form_pattern(form) for form in (c.name, *c.synonyms)] for c in CONCEPTS}
NEGATIONS = [_bounded(cue, re.IGNORECASE) for cue in NEGATION_CUES]
UNCERTAINTIES = [_bounded(cue, re.IGNORECASE) for cue in UNCERTAINTY_CUES]


def _mention_starts(text: str, code: str) -> list[int]:
    """Where mentions of ``code`` begin; overlapping forms ("iron deficiency anemia") are one mention."""
    spans = sorted((m.start(), m.end()) for pattern in MENTIONS[code] for m in pattern.finditer(text))
    starts: list[int] = []
    end = -1
    for span_start, span_end in spans:
        if span_start >= end:
            starts.append(span_start)
        end = max(end, span_end)
    return starts


def _cued(text: str, start: int, cues: list[re.Pattern]) -> bool:
    clause_start = max((m.end() for m in CLAUSE_BREAK.finditer(text, 0, start)), default=0)
    clause = text[clause_start:start]
    return any(len(clause[match.end() :].split()) <= WINDOW for cue in cues for match in cue.finditer(clause))


def _reading(text: str, code: str) -> str:
    """'absent', or how the clearest mention of ``code`` reads: 'asserted', 'uncertain' or 'negated'."""
    starts = _mention_starts(text, code)
    if not starts:
        return "absent"
    if any(not _cued(text, s, NEGATIONS) and not _cued(text, s, UNCERTAINTIES) for s in starts):
        return "asserted"
    if all(_cued(text, s, UNCERTAINTIES) and not _cued(text, s, NEGATIONS) for s in starts):
        return "uncertain"
    if all(_cued(text, s, NEGATIONS) for s in starts):
        return "negated"
    return "mixed"


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return democorpus.load_snippets(democorpus.corpus_path())


@pytest.fixture(scope="module")
def ood() -> list[dict]:
    return democorpus.load_snippets(democorpus.ood_path())


@pytest.fixture(scope="module", params=["corpus", "ood"])
def records(request, corpus, ood) -> list[dict]:
    return corpus if request.param == "corpus" else ood


def test_generator_same_seed_gives_identical_bytes():
    first = generator.to_jsonl(generator.generate_snippets(seed=7, n=400))
    second = generator.to_jsonl(generator.generate_snippets(seed=7, n=400))
    assert first == second
    assert generator.to_jsonl(generator.generate_ood(seed=7, n=50)) == generator.to_jsonl(
        generator.generate_ood(seed=7, n=50)
    )


def test_generator_other_seed_gives_other_corpus():
    seven = generator.generate_snippets(seed=7, n=200)
    eight = generator.generate_snippets(seed=8, n=200)
    assert sum(a["text"] != b["text"] for a, b in zip(seven, eight, strict=False)) > 150
    assert generator.generate_ood(seed=7, n=20) != generator.generate_ood(seed=8, n=20)


def test_generator_prefix_is_stable_across_lengths():
    assert generator.generate_snippets(seed=3, n=50) == generator.generate_snippets(seed=3, n=80)[:50]


def test_shipped_files_equal_fresh_generation_with_default_seed():
    fresh = generator.to_jsonl(generator.generate_snippets(seed=generator.DEFAULT_SEED, n=generator.DEFAULT_N))
    assert democorpus.corpus_path().read_bytes() == fresh.encode("ascii"), (
        "regenerate: python -m features.democorpus.generator --seed 0 --n 3200 --out features/democorpus/data/"
    )
    fresh_ood = generator.to_jsonl(generator.generate_ood(seed=generator.DEFAULT_SEED, n=generator.DEFAULT_OOD_N))
    assert democorpus.ood_path().read_bytes() == fresh_ood.encode("ascii")


def test_cli_writes_both_files(tmp_path):
    assert generator.main(["--seed", "5", "--n", "30", "--n-ood", "4", "--out", str(tmp_path)]) == 0
    written = democorpus.load_snippets(tmp_path / generator.CORPUS_FILE)
    assert written == generator.generate_snippets(seed=5, n=30)
    assert len(democorpus.load_snippets(tmp_path / generator.OOD_FILE)) == 4


def test_cli_rejects_empty_corpus(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        generator.main(["--n", "0", "--out", str(tmp_path)])
    assert exit_info.value.code != 0
    assert "--n" in capsys.readouterr().err


def test_generator_imports_no_django():
    for module in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(module.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not {name for name in imported if name.split(".")[0] in {"django", "rest_framework", "celery"}}


def test_concepts_are_frozen_with_unique_codes_and_known_parents():
    assert len(CONCEPTS) >= 15
    assert len(CODES) == len(CONCEPTS)
    group_codes = {group.code for group in GROUPS}
    for concept in CONCEPTS:
        assert re.fullmatch(r"[A-Z][A-Z0-9]*", concept.code)
        assert concept.name and concept.synonyms and concept.parent in group_codes
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONCEPTS[0].code = "X"
    assert {concept.parent for concept in CONCEPTS} == group_codes


def test_corpus_size_and_concept_coverage(corpus):
    assert len(corpus) >= 3000
    counts = Counter(code for record in corpus for code in record["concept_tags"])
    well_covered = [code for code, count in counts.items() if count >= 50]
    assert len(well_covered) >= 15
    assert set(counts) == CODES


def test_records_have_the_documented_fields(records):
    for record in records:
        assert set(record) == {"external_id", "text", "metadata", "concept_tags"}
        metadata = record["metadata"]
        assert set(metadata) == {"note_type", "section", "institution", "negated", "uncertain", "protected"}
        assert metadata["institution"] in INSTITUTIONS
        assert set(record["concept_tags"]) <= CODES
        assert set(metadata["negated"]) <= CODES and set(metadata["uncertain"]) <= CODES
        assert record["concept_tags"] == sorted(set(record["concept_tags"]))
        assert record["text"].strip() == record["text"] and record["text"].isascii()


def test_sections_and_institutions_all_occur(corpus):
    clinical = [r for r in corpus if r["metadata"]["note_type"] != "boilerplate"]
    assert {r["metadata"]["section"] for r in clinical} == SECTIONS
    assert {r["metadata"]["institution"] for r in corpus} == INSTITUTIONS


def test_external_ids_are_unique(corpus, ood):
    ids = [record["external_id"] for record in corpus + ood]
    assert len(ids) == len(set(ids))


def test_every_tag_is_asserted_by_its_text(records):
    for record in records:
        for code in record["concept_tags"]:
            assert _reading(record["text"], code) == "asserted", (record["external_id"], code, record["text"])


def test_negated_concepts_are_not_tagged_and_follow_a_cue(records):
    n_negated = 0
    for record in records:
        for code in record["metadata"]["negated"]:
            n_negated += 1
            assert code not in record["concept_tags"]
            assert _reading(record["text"], code) == "negated", (record["external_id"], code, record["text"])
    assert n_negated >= 0.1 * len(records)


def test_uncertain_concepts_are_not_tagged_and_follow_a_cue(records):
    n_uncertain = 0
    for record in records:
        for code in record["metadata"]["uncertain"]:
            n_uncertain += 1
            assert code not in record["concept_tags"] and code not in record["metadata"]["negated"]
            assert _reading(record["text"], code) == "uncertain", (record["external_id"], code, record["text"])
    assert n_uncertain >= 0.05 * len(records)


def test_no_concept_is_mentioned_without_being_accounted_for(records):
    for record in records:
        accounted = (
            set(record["concept_tags"]) | set(record["metadata"]["negated"]) | set(record["metadata"]["uncertain"])
        )
        unaccounted = [code for code in CODES - accounted if _mention_starts(record["text"], code)]
        assert not unaccounted, (record["external_id"], unaccounted, record["text"])


def test_boilerplate_has_no_tags_and_is_five_to_eight_percent(corpus):
    boilerplate = [r for r in corpus if r["metadata"]["note_type"] == "boilerplate"]
    assert 0.05 <= len(boilerplate) / len(corpus) <= 0.08
    for record in boilerplate:
        assert record["concept_tags"] == [] and record["metadata"]["negated"] == []
        assert record["metadata"]["uncertain"] == []
    clinical = [r for r in corpus if r["metadata"]["note_type"] != "boilerplate"]
    assert all(r["concept_tags"] for r in clinical)


def test_comorbid_snippets_carry_two_or_three_concepts(corpus):
    sizes = Counter(len(r["concept_tags"]) for r in corpus)
    assert sizes[2] >= 0.15 * len(corpus) and sizes[3] >= 0.03 * len(corpus)
    assert max(sizes) == 3


def test_snippets_have_one_to_four_sentences(corpus):
    for record in corpus:
        # Decimal points and "E. coli" are not sentence ends; ". " followed by a capital mostly is.
        n_sentences = len(re.findall(r"[.!?](?=\s+[A-Z#(]|$)", record["text"].replace("E. coli", "E coli")))
        assert n_sentences <= 4 + record["text"].count("Dr. "), record["text"]


def test_chart_style_markers_are_present(corpus):
    text = "\n".join(r["text"] for r in corpus)
    for marker in (
        "CHF",
        "BNP",
        "Cr ",
        "eGFR",
        "HbA1c",
        "INR",
        "WBC",
        "SpO2",
        "(H)",
        "[L]",
        " IV BID",
        "mg PO BID",
        "Electronically signed by",
        "Dictated but not read",
        "Page ",
    ):
        assert marker in text, marker


def test_ood_slice_has_a_different_narrative_style(corpus, ood):
    assert 250 <= len(ood) <= 400
    clinical_ood = [r for r in ood if r["metadata"]["note_type"] != "boilerplate"]
    assert all(r["metadata"]["note_type"] == "discharge_summary" for r in clinical_ood)
    assert statistics.mean(len(r["text"]) for r in ood) > 2 * statistics.mean(len(r["text"]) for r in corpus)
    for cue in NARRATIVE_CUES:
        assert all(cue.search(r["text"]) for r in clinical_ood)
        assert sum(bool(cue.search(r["text"])) for r in corpus) <= 0.03 * len(corpus)
    ood_tags = Counter(code for r in ood for code in r["concept_tags"])
    assert set(ood_tags) == CODES


def test_shipped_data_stays_small():
    files = [
        democorpus.corpus_path(),
        democorpus.ood_path(),
        PACKAGE / "data" / "LICENSE",
        PACKAGE / "data" / "README.md",
    ]
    assert all(path.exists() for path in files)
    assert sum(path.stat().st_size for path in files) < 2_200_000


def test_sample_slice_is_a_deterministic_subset(corpus):
    first = democorpus.sample_slice(300, 0)
    assert first == democorpus.sample_slice(300, 0)
    assert first != democorpus.sample_slice(300, 1)
    assert len(first) == 300 and len({r["external_id"] for r in first}) == 300
    ids = [r["external_id"] for r in corpus]
    positions = [ids.index(r["external_id"]) for r in first]
    assert positions == sorted(positions)
    assert {code for r in first for code in r["concept_tags"]} == CODES
    with pytest.raises(ValueError):
        democorpus.sample_slice(len(corpus) + 1, 0)


def test_load_snippets_reads_every_line(corpus):
    with democorpus.corpus_path().open(encoding="utf-8") as handle:
        assert [json.loads(line) for line in handle] == corpus


# Protected attributes (issue 12), read from the text independently of the generator.
# A condition only one sex has states the sex as plainly as a pronoun does.
FEMALE = re.compile(r"\b(woman|female|she|her|She|Her|Ms\.|fibroid uterus)\b|\d(F)\b|\by/?o F\b")
MALE = re.compile(r"\b(man|male|he|his|He|His|Mr\.|BPH|prostate cancer)\b|\d(M)\b|\by/?o M\b")
AGE = re.compile(r"\b(\d{2})(?=[ -]?(?:year-old|y/o|yo|[MF]\b))")
SOCIAL_TAGS = {
    "identifies as Black": "RACE_ETHNICITY:black",
    "identifies as White": "RACE_ETHNICITY:white",
    "identifies as Hispanic/Latino": "RACE_ETHNICITY:hispanic",
    "identifies as Asian": "RACE_ETHNICITY:asian",
    "Medicaid insurance": "INSURANCE:medicaid",
    "Medicare insurance": "INSURANCE:medicare",
    "private insurance": "INSURANCE:private",
    "uninsured": "INSURANCE:uninsured",
}


def _expected_protected(text: str) -> set[str]:
    tags = set()
    if FEMALE.search(text):
        tags.add("SEX_GENDER:female")
    if MALE.search(text):
        tags.add("SEX_GENDER:male")
    ages = {int(match.group(1)) for match in AGE.finditer(text)}
    for age in ages:
        tags.add("AGE_BAND:" + ("18-44" if age < 45 else "45-64" if age < 65 else "65+"))
    social = text.split("Social history: ", 1)[1] if "Social history: " in text else ""
    tags |= {tag for phrase, tag in SOCIAL_TAGS.items() if re.search(r"\b" + re.escape(phrase) + r"\b", social)}
    return tags


def test_protected_tags_are_exactly_what_the_text_states(records):
    n_tagged = 0
    for record in records:
        tags = set(record["metadata"]["protected"])
        n_tagged += bool(tags)
        assert record["metadata"]["protected"] == sorted(tags)
        assert tags == _expected_protected(record["text"]), (record["external_id"], record["text"])
    assert n_tagged >= 0.2 * len(records)


def test_no_snippet_gives_its_patient_both_sexes(records):
    """Sex-specific conditions follow the patient's sex: no woman with BPH or prostate cancer, no man with a
    fibroid uterus (39 women had BPH or prostate cancer before)."""
    both = [r["external_id"] for r in records if FEMALE.search(r["text"]) and MALE.search(r["text"])]
    assert both == []
    implied = [r for r in records if re.search(r"\b(BPH|prostate cancer|fibroid uterus)\b", r["text"])]
    assert len(implied) >= 20  # the check above has something to look at


def test_declined_or_undocumented_answers_are_not_tags(records):
    declined = [r for r in records if "race/ethnicity declined" in r["text"] or "insurance not documented" in r["text"]]
    assert declined
    for record in declined:
        if "race/ethnicity declined" in record["text"]:
            assert not any(tag.startswith("RACE_ETHNICITY:") for tag in record["metadata"]["protected"])
        if "insurance not documented" in record["text"]:
            assert not any(tag.startswith("INSURANCE:") for tag in record["metadata"]["protected"])


def test_every_protected_attribute_is_well_covered(corpus):
    counts = Counter(tag.split(":")[0] for record in corpus for tag in record["metadata"]["protected"])
    assert set(counts) == {"SEX_GENDER", "AGE_BAND", "RACE_ETHNICITY", "INSURANCE"}
    assert min(counts.values()) >= 200


def test_social_history_keeps_the_clinical_text_and_its_stream():
    # The social sentence comes from its own stream: without it, each snippet is the one the clinical
    # generator alone writes, with the same concept tags.
    import random

    rng = random.Random(4)
    clinical_only = [generator._snippet(rng, f"demo-{i:05d}") for i in range(1, 301)]
    with_social = generator.generate_snippets(seed=4, n=300)
    for alone, full in zip(clinical_only, with_social, strict=False):
        assert full["text"].split(" Social history: ")[0] == alone["text"]
        assert full["concept_tags"] == alone["concept_tags"]
    assert sum("Social history: " in r["text"] for r in with_social) >= 30
