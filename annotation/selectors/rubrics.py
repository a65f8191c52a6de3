"""Rubrics for the editor: versions, their concepts as a tree, and what a new version would change."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Count, QuerySet

from ..models import RESERVED_CONCEPTS, Rubric, RubricVersion


def rubric_list() -> QuerySet[Rubric]:
    return Rubric.objects.annotate(n_versions=Count("versions")).order_by("name")


def rubric_latest_version(*, rubric: Rubric) -> RubricVersion:
    return rubric.versions.order_by("-version").first()


def concepts_tree(concepts: Sequence) -> list:
    """Concepts (models or specs with code, name, parent_code) in tree order, each parent before its
    children, the reserved codes last; each gets `depth`. Works on unsaved specs too (returns copies
    as dicts then)."""
    items = list(concepts)
    codes = {c.code for c in items}
    children: dict[str, list] = defaultdict(list)
    for concept in items:
        children[concept.parent_code if concept.parent_code in codes else ""].append(concept)
    ordered: list = []

    def walk(parent: str, depth: int, path: set) -> None:
        for concept in sorted(children.get(parent, []), key=lambda c: (c.code in RESERVED_CONCEPTS, c.name.lower())):
            if concept.code in path:  # a cycle: the service refuses it; show the row once anyway
                continue
            ordered.append((concept, depth))
            walk(concept.code, depth + 1, path | {concept.code})

    walk("", 0, set())
    seen = {id(concept) for concept, _ in ordered}
    ordered += [(concept, 0) for concept in items if id(concept) not in seen]
    return ordered


@dataclass(frozen=True)
class ConceptChange:
    code: str
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class RubricDiff:
    added: list = field(default_factory=list)  # specs
    removed: list = field(default_factory=list)  # specs
    changed: list[ConceptChange] = field(default_factory=list)
    guidelines_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.guidelines_changed)


def _text(value) -> str:
    if isinstance(value, bool):
        return "protected" if value else ""
    return ", ".join(value) if isinstance(value, list | tuple) else str(value or "")


def rubric_diff(
    *, before: Sequence, after: Sequence, guidelines_before: str = "", guidelines_after: str = ""
) -> RubricDiff:
    """What changes from one concept list to another (both with code, name, parent_code, description,
    synonyms, protected). Reserved codes that `after` leaves out are added back by the service, so they do not count
    as removed."""
    old = {c.code: c for c in before}
    new = {c.code: c for c in after}
    changed = []
    for code, concept in new.items():
        if code not in old:
            continue
        for name in ("name", "parent_code", "description", "synonyms", "protected"):
            a, b = _text(getattr(old[code], name)), _text(getattr(concept, name))
            if a != b:
                changed.append(ConceptChange(code=code, field=name, before=a, after=b))
    return RubricDiff(
        added=[c for code, c in new.items() if code not in old],
        removed=[c for code, c in old.items() if code not in new and code not in RESERVED_CONCEPTS],
        changed=changed,
        guidelines_changed=(guidelines_before or "").strip() != (guidelines_after or "").strip(),
    )
