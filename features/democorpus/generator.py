"""Seeded generator of the synthetic chart-style demo corpus and its discharge-summary drift slice.

Pure Python (no Django). Regenerate the shipped files with
``python -m features.democorpus.generator --seed 0 --n 3200 --out features/democorpus/data/``.

Tagging rule: ``concept_tags`` lists the concepts a snippet asserts, current or historical
("known CKD", "h/o MI"). A negated mention ("no evidence of PE") goes to ``metadata.negated`` and an
uncertain one ("cannot rule out PE", "possible pneumonia") to ``metadata.uncertain``; neither is a tag.
Every cue stands a few words before its mention, and asserted sentences carry no cue at all.

Protected attributes (issue 12) go to ``metadata.protected`` as ``ATTRIBUTE:value`` tags, written only
when the text states them: ``SEX_GENDER`` when a gendered word for the patient is written ("woman",
"67M", "she", "Mr.") or a condition only one sex has ("BPH", "prostate cancer", "fibroid uterus": drawn
only for a patient of that sex, ``concepts.SEX_SPECIFIC``), ``AGE_BAND`` when the age is, and ``RACE_ETHNICITY`` / ``INSURANCE`` from a
social-history sentence that some snippets carry ("Social history: identifies as Black, Medicaid
insurance."). A declined or undocumented answer ("race/ethnicity declined", "insurance not
documented") is no tag. The social sentences come from their own random stream per snippet, so the
clinical text of every snippet is the same as without them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from features.democorpus.concepts import (
    BACKGROUND,
    COMPLAINTS,
    CONCEPTS,
    FREQUENCY_WORDS,
    GROUPS,
    NORMAL_LABS,
    OTHER_DRUGS,
    PROFILES,
    ROUTE_WORDS,
    SEX_SPECIFIC,
    Concept,
    ConceptGroup,
    Drug,
    Lab,
)
from features.democorpus.frames import (
    BOILERPLATE_FRAMES,
    COMORBID_FRAMES,
    COMORBID_PAIR_FRAMES,
    CREDENTIALS,
    DESTINATIONS,
    DISCHARGE_BOILERPLATE_FRAMES,
    DURATIONS,
    FILLER_FRAMES,
    FIRST_NAMES,
    FRAMES,
    INSTITUTIONS,
    NARRATIVE_COMORBID_FRAMES,
    NARRATIVE_COURSE_FRAMES,
    NARRATIVE_DISCHARGE_FRAMES,
    NARRATIVE_INTRO_FRAMES,
    NARRATIVE_NEGATION_FRAMES,
    NARRATIVE_UNCERTAINTY_FRAMES,
    NEGATION_FRAMES,
    SINCES,
    STUDY_TIMES,
    SURNAMES,
    UNCERTAINTY_FRAMES,
    Institution,
)

__all__ = [
    "CONCEPTS",
    "GROUPS",
    "Concept",
    "ConceptGroup",
    "DEFAULT_SEED",
    "DEFAULT_N",
    "DEFAULT_OOD_N",
    "SECTIONS",
    "CORPUS_FILE",
    "OOD_FILE",
    "generate_snippets",
    "generate_ood",
    "to_jsonl",
    "write_corpus",
    "main",
]

DEFAULT_SEED = 0
DEFAULT_N = 3200
DEFAULT_OOD_N = 300
CORPUS_FILE = "clinical_snippets.jsonl"
OOD_FILE = "discharge_ood.jsonl"
SECTIONS = ("hpi", "assessment_plan", "labs", "imaging", "medications")
NOTE_TYPES = ("progress_note", "history_and_physical", "consult_note", "ed_note")
BOILERPLATE_RATE = 0.065
_SECTION_WEIGHTS = (22, 26, 18, 16, 18)
_MAX_SENTENCES = 4
_ONE_OFF = {"once", "bolus", "continuous"}
_BY_CODE = {concept.code: concept for concept in CONCEPTS}
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_HEADER_START = re.compile(r"^[A-Za-z][A-Za-z0-9/ ]*:")


def _sentences(frame: str) -> int:
    return max(1, len(_SENTENCE_END.findall(frame)))


def _capitalise(text: str) -> str:
    # Only a wholly lower-case first word is capitalised: "pH", "eGFR", "hs-TnT" keep their case.
    first = text.split(" ", 1)[0]
    return text[0].upper() + text[1:] if text[:1].isalpha() and first == first.lower() else text


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _lab_text(lab: Lab, value: float, style: str, rng: random.Random) -> str:
    shown = _number(value, lab.decimals)
    flag = "H" if lab.high is not None and value > lab.high else "L" if value < lab.low else ""
    unit = f" {lab.unit}" if lab.unit else ""
    if style == "verbose":
        return f"{lab.long}: {shown}{unit}" + (f" [{flag}]" if flag else "")
    if style == "reference":
        if lab.high is None:
            reference = f">{_number(lab.low, lab.decimals)}"
        elif lab.low == 0:
            reference = f"<{_number(lab.high, lab.decimals)}"
        else:
            reference = f"{_number(lab.low, lab.decimals)}-{_number(lab.high, lab.decimals)}"
        return f"{lab.short} {shown}{unit}" + (f" {flag}" if flag else "") + f" (ref {reference})"
    return f"{lab.short} {shown}" + (unit if rng.random() < 0.5 else "") + (f" ({flag})" if flag else "")


def _takes_home(drug: Drug) -> bool:
    return bool(set(drug.routes) - {"IV"}) and bool(set(drug.frequencies) - _ONE_OFF)


def _drug_text(drug: Drug, rng: random.Random, *, home: bool, words: bool) -> str:
    """A regimen in chart style ("furosemide 40 mg IV BID") or in words; ``home`` avoids IV and one-offs."""
    routes = [r for r in drug.routes if r != "IV"] if home else []
    frequencies = [f for f in drug.frequencies if f not in _ONE_OFF] if home else []
    dose = rng.choice(drug.doses)
    route, frequency = rng.choice(routes or drug.routes), rng.choice(frequencies or drug.frequencies)
    if words:
        route, frequency = ROUTE_WORDS.get(route, route), FREQUENCY_WORDS.get(frequency, frequency)
    return f"{drug.name} {dose} {route} {frequency}"


def _mention(concept: Concept, rng: random.Random) -> str:
    # The first two forms are the everyday ones; the rest add variety.
    weights = [3 if i < 2 else 1 for i in range(len(concept.synonyms))]
    return rng.choices(concept.synonyms, weights)[0]


def _patient(rng: random.Random) -> dict[str, str]:
    female = rng.random() < 0.5
    age = rng.randint(19, 94)
    return {
        "age": str(age),
        "an": "an" if age in (11, 18) or str(age).startswith("8") else "a",
        "sexw": "woman" if female else "man",
        "sexa": "F" if female else "M",
        "sexl": "female" if female else "male",
        "pron": "she" if female else "he",
        "pos": "her" if female else "his",
        "title": "Ms." if female else "Mr.",
        "surname": rng.choice(SURNAMES),
    }


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(2031, 2033)}"


@dataclass
class _Note:
    """What the sentences of one snippet share: the random stream, the hospital, the patient."""

    rng: random.Random
    institution: Institution
    patient: dict[str, str]
    shown_labs: set[str] = field(default_factory=set)  # one value per test, so none contradicts another
    mentioned: set[str] = field(default_factory=set)  # patient slots the text used (protected-attribute tags)


class _Slots(dict):
    """Fills frame slots on first use, so a snippet only draws what its frames name."""

    def __init__(self, note: _Note, concept: Concept | None):
        super().__init__()
        self.note, self.rng, self.institution = note, note.rng, note.institution
        self.concept = concept
        self.profile = PROFILES[concept.code] if concept else None
        self.used: dict[str, set[int]] = {}
        self.supports: dict[str, bool] = {}

    def fill(self, frame: str) -> str:
        return frame.format_map(self)

    def _pick(
        self,
        bank: str,
        items: Sequence,
        keep: Callable[[object], bool] = lambda item: True,
        text: Callable[[object], str] = str,
    ):
        """An item of ``items`` that ``keep`` accepts, not yet drawn from ``bank`` unless all were, and that
        fits the patient's sex (``text`` gives the words that may be sex-specific). An item that does not
        fit moves the draw on to the next one that does, so the random stream stays as it was."""
        used = self.used.setdefault(bank, set())
        allowed = [i for i, item in enumerate(items) if keep(item)] or list(range(len(items)))
        index = self.rng.choice([i for i in allowed if i not in used] or allowed)
        if not self._fits_patient(text(items[index])):
            after = [(index + step) % len(items) for step in range(1, len(items))]
            fitting = [i for i in after if i in allowed and self._fits_patient(text(items[i]))]
            index = next((i for i in fitting if i not in used), fitting[0] if fitting else index)
        used.add(index)
        return items[index]

    def _fits_patient(self, text: str) -> bool:
        return SEX_SPECIFIC.get(text, self.note.patient["sexl"]) == self.note.patient["sexl"]

    def _lab(self, pools: Sequence[tuple[str, Sequence[Lab]]]) -> str:
        """A result from the first pool holding a test not yet shown in this snippet."""
        shown = self.note.shown_labs
        bank, pool = next(((b, p) for b, p in pools if any(lab.short not in shown for lab in p)), pools[-1])
        lab = self._pick(bank, pool, lambda lab: lab.short not in shown)
        shown.add(lab.short)
        return _lab_text(lab, self.rng.uniform(lab.draw_low, lab.draw_high), self.institution.lab_style, self.rng)

    def _text(self, bank: str, items: Sequence[str]) -> str:
        value = self._pick(bank, items)
        return self.fill(value) if "{" in value else value

    def _study(self, suffix: str) -> None:
        study = self._pick("study", self.profile.studies, text=lambda study: study.finding)
        self["mod" + suffix], self["find" + suffix] = study.modality, self.fill(study.finding)
        self.supports[suffix] = study.supports

    def study_supports(self) -> bool:
        """Draws the snippet's first study if needed; says whether it shows the concept itself."""
        if "mod" not in self:
            self._study("")
        return self.supports[""]

    def __missing__(self, key: str) -> str:
        if key in self.note.patient:  # looked up on use, so the note knows what it said about the patient
            self.note.mentioned.add(key)
            value = self.note.patient[key]
        elif key[0].isupper():
            value = _capitalise(self[key[0].lower() + key[1:]])
        elif key[:2] in ("r_", "d_"):
            low, high = (int(part) for part in key[2:].split("_"))
            drawn = self.rng.randint(low, high)
            value = str(drawn) if key[0] == "r" else f"{drawn / 10:.1f}"
        elif key.rstrip("0123456789") in ("mod", "find"):
            self._study(key[len(key.rstrip("0123456789")) :])
            return self[key]
        else:
            value = self._draw(key.rstrip("0123456789"))
        self[key] = value
        return value

    def _draw(self, bank: str) -> str:
        rng, profile = self.rng, self.profile
        if bank == "m":
            return _mention(self.concept, rng)
        if bank == "lab":
            return self._lab((("lab", profile.labs), ("nlab", NORMAL_LABS)))
        if bank == "nlab":
            return self._lab((("nlab", NORMAL_LABS),))
        if bank == "drug":
            return _drug_text(self._pick("drug", profile.drugs), rng, home=False, words=False)
        if bank in ("hdrug", "ddrug"):
            drug = self._pick("drug", profile.drugs, _takes_home)
            return _drug_text(drug, rng, home=True, words=bank == "ddrug")
        if bank in ("odrug", "odrugn"):
            return _drug_text(self._pick("odrug", OTHER_DRUGS), rng, home=True, words=bank == "odrugn")
        banks = {
            "sym": lambda: profile.symptoms,
            "labnote": lambda: profile.lab_notes,
            "plan": lambda: profile.plans,
            "status": lambda: profile.statuses,
            "treat": lambda: profile.treatments,
            "course": lambda: profile.courses,
            "spec": lambda: profile.specialties,
            "cc": lambda: COMPLAINTS,
            "dur": lambda: DURATIONS,
            "since": lambda: SINCES,
            "when": lambda: STUDY_TIMES,
            "dest": lambda: DESTINATIONS,
        }
        if bank in banks:
            return self._text(bank, banks[bank]())
        if bank == "bgone":
            return self._pick("bg", BACKGROUND)
        if bank == "bg":
            first = self._pick("bg", BACKGROUND)
            return first if rng.random() < 0.5 else f"{first}, {self._pick('bg', BACKGROUND)}"
        if bank in ("date", "date2"):
            return _date(rng)
        if bank == "dob":
            return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/19{rng.randint(30, 99)}"
        if bank == "time":
            return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        if bank == "clinician":
            return f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
        if bank == "patient":
            return f"{rng.choice(SURNAMES).upper()}, {rng.choice(FIRST_NAMES)}"
        if bank == "credential":
            return rng.choice(CREDENTIALS)
        if bank == "institution":
            return self.institution.name
        raise KeyError(f"unknown frame slot {bank!r}")


def _related(rng: random.Random, ties: Sequence[str], exclude: Sequence[str]) -> Concept | None:
    """One of ``ties`` (three times in four) or any other concept, never an excluded one; None if none left."""
    related = [code for code in ties if code not in exclude]
    if related and rng.random() < 0.75:
        return _BY_CODE[rng.choice(related)]
    others = [c for c in CONCEPTS if c.code not in exclude]
    return rng.choice(others) if others else None


def _frame(rng: random.Random, frames: Sequence[str], budget: int) -> str:
    """A frame of at most ``budget`` sentences (the shortest one if none fits)."""
    fitting = [frame for frame in frames if _sentences(frame) <= budget]
    return rng.choice(fitting or [min(frames, key=_sentences)])


def _boilerplate(rng: random.Random, institution: Institution, frames, external_id: str) -> dict:
    section, frame = rng.choice(frames)
    note = _Note(rng, institution, _patient(rng))
    text = _Slots(note, None).fill(frame)
    metadata = {
        "note_type": "boilerplate",
        "section": section,
        "institution": institution.code,
        "negated": [],
        "uncertain": [],
    }
    return _record(external_id, text, metadata, [], note)


def _pick_concepts(
    rng: random.Random, primary: Concept, n_extra: int, p_negated: float, p_uncertain: float
) -> tuple[list[Concept], Concept | None, Concept | None]:
    """The asserted concepts (primary first), and at most one negated and one uncertain other."""
    profile = PROFILES[primary.code]
    asserted = [primary]
    for _ in range(n_extra):
        extra = _related(rng, profile.related, [c.code for c in asserted])
        if extra:
            asserted.append(extra)
    taken = [c.code for c in asserted]
    negated = _related(rng, profile.differential, taken) if rng.random() < p_negated else None
    if negated:
        taken.append(negated.code)
    uncertain = _related(rng, profile.differential, taken) if rng.random() < p_uncertain else None
    return asserted, negated, uncertain


_SEX_SLOTS = {"sexw", "sexa", "sexl", "pron", "pos", "title"}
# "BPH", "prostate cancer", "fibroid uterus" name the patient's sex too (drawn only for that sex).
_SEX_SPECIFIC_MENTION = re.compile("|".join(rf"\b{re.escape(term)}\b" for term in SEX_SPECIFIC))
# Social-history sentence parts: (text, tag or None for a declined or undocumented answer).
RACE_ETHNICITY = (
    ("identifies as Black", "RACE_ETHNICITY:black"),
    ("identifies as White", "RACE_ETHNICITY:white"),
    ("identifies as Hispanic/Latino", "RACE_ETHNICITY:hispanic"),
    ("identifies as Asian", "RACE_ETHNICITY:asian"),
    ("race/ethnicity declined", None),
)
INSURANCE = (
    ("Medicaid insurance", "INSURANCE:medicaid"),
    ("Medicare insurance", "INSURANCE:medicare"),
    ("private insurance", "INSURANCE:private"),
    ("uninsured", "INSURANCE:uninsured"),
    ("insurance not documented", None),
)
SOCIAL_RATE = {"chart": 0.3, "discharge": 0.4}
_COUNTED_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z#(]|$)")


def age_band(age: int) -> str:
    return "18-44" if age < 45 else "45-64" if age < 65 else "65+"


def _protected_tags(note: _Note, text: str) -> list[str]:
    tags = []
    if note.mentioned & _SEX_SLOTS or _SEX_SPECIFIC_MENTION.search(text):
        tags.append(f"SEX_GENDER:{note.patient['sexl']}")
    if "age" in note.mentioned:
        tags.append(f"AGE_BAND:{age_band(int(note.patient['age']))}")
    return tags


def _record(external_id: str, text: str, metadata: dict, asserted: Sequence[Concept], note: _Note) -> dict:
    metadata = {**metadata, "protected": sorted(_protected_tags(note, text))}
    return {
        "external_id": external_id,
        "text": text,
        "metadata": metadata,
        "concept_tags": sorted(c.code for c in asserted),
    }


def _with_social(record: dict, seed: int, style: str) -> dict:
    """Some clinical snippets end with a social-history sentence (race/ethnicity, insurance), drawn from
    the snippet's own stream; a chart snippet already at four sentences gets none."""
    rng = random.Random(f"concord-democorpus-social-{seed}-{record['external_id']}")
    draw = rng.random()
    if record["metadata"]["note_type"] == "boilerplate" or draw >= SOCIAL_RATE[style]:
        return record
    if style == "chart" and len(_COUNTED_SENTENCE_END.findall(record["text"].replace("E. coli", "E coli"))) >= 4:
        return record
    which = rng.choice(("both", "both", "race", "insurance"))
    parts = []
    if which in ("both", "race"):
        parts.append(rng.choice(RACE_ETHNICITY))
    if which in ("both", "insurance"):
        parts.append(rng.choice(INSURANCE))
    sentence = "Social history: " + ", ".join(text for text, _ in parts) + "."
    tags = set(record["metadata"]["protected"]) | {tag for _, tag in parts if tag}
    return {
        **record,
        "text": f"{record['text']} {sentence}",
        "metadata": {**record["metadata"], "protected": sorted(tags)},
    }


def _snippet(rng: random.Random, external_id: str) -> dict:
    institution = rng.choice(INSTITUTIONS)
    note_type = rng.choice(NOTE_TYPES)
    if rng.random() < BOILERPLATE_RATE:
        return _boilerplate(rng, institution, BOILERPLATE_FRAMES, external_id)
    section = rng.choices(SECTIONS, _SECTION_WEIGHTS)[0]
    primary = rng.choice(CONCEPTS)
    n_extra = rng.choices((0, 1, 2), (66, 25, 9))[0]
    asserted, negated, uncertain = _pick_concepts(rng, primary, n_extra, 0.2, 0.12)
    note = _Note(rng, institution, _patient(rng))
    slots = _Slots(note, primary)

    # Every part but the lead is one sentence; the lead keeps at least one of the four.
    others: list[str] = []
    extras = asserted[1:]
    if len(extras) == 2 and rng.random() < 0.6:
        pair = _Slots(note, None)
        pair["a"], pair["b"] = _mention(extras[0], rng), _mention(extras[1], rng)
        others.append(pair.fill(rng.choice(COMORBID_PAIR_FRAMES)))
    else:
        for extra in extras:
            others.append(_Slots(note, extra).fill(rng.choice(COMORBID_FRAMES[section])))
    if negated and len(others) < _MAX_SENTENCES - 1:
        frames = NEGATION_FRAMES["any"] + NEGATION_FRAMES[section]
        others.append(_Slots(note, negated).fill(rng.choice(frames)))
    else:
        negated = None
    if uncertain and len(others) < _MAX_SENTENCES - 1:
        frames = UNCERTAINTY_FRAMES["any"] + UNCERTAINTY_FRAMES[section]
        others.append(_Slots(note, uncertain).fill(rng.choice(frames)))
    else:
        uncertain = None

    main_frames = FRAMES[section]
    if section == "imaging":
        # "Consistent with X" only fits a study that shows X; any study fits "obtained for X".
        main_frames = FRAMES["imaging_context"]
        if slots.study_supports():
            main_frames += FRAMES["imaging"]
    lead_frame = _frame(rng, main_frames, _MAX_SENTENCES - len(others))
    lead = slots.fill(lead_frame)
    if len(others) + _sentences(lead_frame) < _MAX_SENTENCES and rng.random() < 0.3:
        others.append(_Slots(note, primary).fill(rng.choice(FILLER_FRAMES[section])))
    rng.shuffle(others)
    parts = [lead] + others
    if len(parts) > 1 and rng.random() < 0.15:
        parts[0], parts[1] = parts[1], parts[0]
    if rng.random() < 0.25 and not _HEADER_START.match(parts[0]):
        parts[0] = f"{dict(institution.section_labels)[section]} {parts[0]}"
    metadata = {
        "note_type": note_type,
        "section": section,
        "institution": institution.code,
        "negated": [negated.code] if negated else [],
        "uncertain": [uncertain.code] if uncertain else [],
    }
    return _record(external_id, " ".join(parts), metadata, asserted, note)


def _narrative(rng: random.Random, external_id: str) -> dict:
    institution = rng.choice(INSTITUTIONS)
    if rng.random() < 0.05:
        return _boilerplate(rng, institution, DISCHARGE_BOILERPLATE_FRAMES, external_id)
    primary = rng.choice(CONCEPTS)
    n_extra = rng.choices((0, 1, 2), (50, 35, 15))[0]
    asserted, negated, uncertain = _pick_concepts(rng, primary, n_extra, 0.3, 0.15)
    note = _Note(rng, institution, _patient(rng))
    slots = _Slots(note, primary)
    history = [slots["bgone"]] + ([slots["bgone2"]] if rng.random() < 0.5 else [])
    middle: list[str] = []
    for extra in asserted[1:]:
        extra_slots = _Slots(note, extra)
        if rng.random() < 0.5:
            history.insert(0, extra_slots["m"])
        else:
            middle.append(extra_slots.fill(rng.choice(NARRATIVE_COMORBID_FRAMES)))
    slots["hist"] = ", ".join(history[:-1]) + " and " + history[-1] if len(history) > 1 else history[0]
    if negated:
        middle.append(_Slots(note, negated).fill(rng.choice(NARRATIVE_NEGATION_FRAMES)))
    if uncertain:
        middle.append(_Slots(note, uncertain).fill(rng.choice(NARRATIVE_UNCERTAINTY_FRAMES)))
    rng.shuffle(middle)
    parts = [slots.fill(rng.choice(NARRATIVE_INTRO_FRAMES)), slots.fill(rng.choice(NARRATIVE_COURSE_FRAMES))]
    parts += middle
    parts.append(slots.fill(rng.choice(NARRATIVE_DISCHARGE_FRAMES)))
    metadata = {
        "note_type": "discharge_summary",
        "section": "hospital_course",
        "institution": institution.code,
        "negated": [negated.code] if negated else [],
        "uncertain": [uncertain.code] if uncertain else [],
    }
    return _record(external_id, " ".join(parts), metadata, asserted, note)


def generate_snippets(*, seed: int = DEFAULT_SEED, n: int = DEFAULT_N) -> list[dict]:
    """``n`` chart-style snippets; the same seed always gives the same list."""
    rng = random.Random(seed)
    return [_with_social(_snippet(rng, f"demo-{i:05d}"), seed, "chart") for i in range(1, n + 1)]


def generate_ood(*, seed: int = DEFAULT_SEED, n: int = DEFAULT_OOD_N) -> list[dict]:
    """``n`` discharge-summary narratives, a style shift from the chart snippets, for drift audits."""
    rng = random.Random(f"concord-democorpus-discharge-{seed}")
    return [_with_social(_narrative(rng, f"ood-{i:05d}"), seed, "discharge") for i in range(1, n + 1)]


def to_jsonl(records: Sequence[dict]) -> str:
    """One JSON object per line with sorted keys: byte-stable for a given list."""
    return "".join(json.dumps(record, sort_keys=True, ensure_ascii=True) + "\n" for record in records)


def write_corpus(
    *, out_dir: Path, seed: int = DEFAULT_SEED, n: int = DEFAULT_N, n_ood: int = DEFAULT_OOD_N
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus, ood = out_dir / CORPUS_FILE, out_dir / OOD_FILE
    corpus.write_bytes(to_jsonl(generate_snippets(seed=seed, n=n)).encode("ascii"))
    ood.write_bytes(to_jsonl(generate_ood(seed=seed, n=n_ood)).encode("ascii"))
    return corpus, ood


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="chart-style snippets")
    parser.add_argument("--n-ood", type=int, default=DEFAULT_OOD_N, help="discharge-summary snippets")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args(argv)
    if args.n < 1 or args.n_ood < 0:
        parser.error("--n must be at least 1 and --n-ood at least 0")
    corpus, ood = write_corpus(out_dir=args.out, seed=args.seed, n=args.n, n_ood=args.n_ood)
    print(f"wrote {args.n} snippets to {corpus} and {args.n_ood} to {ood}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
