"""Rubrics and their versions: a tree of concepts (plus the reserved codes) with guidelines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction

from accounts.audit import audit_record

from ..models import RESERVED_CONCEPTS, Concept, Rubric, RubricVersion
from .errors import InvalidInput


@dataclass(frozen=True)
class ConceptSpec:
    """One concept of a rubric version; `parent_code` empty for a top-level concept."""

    code: str
    name: str
    parent_code: str = ""
    description: str = ""
    synonyms: tuple[str, ...] = field(default_factory=tuple)
    protected: bool = False  # a protected attribute (race, sex, insurance, age band)


def concepts_check(*, concepts: Sequence[ConceptSpec]) -> list[ConceptSpec]:
    """Validate a concept list (codes unique, parents known, no cycles) and add the reserved codes."""
    specs = list(concepts)
    codes = [spec.code.strip() for spec in specs]
    if any(not code for code in codes):
        raise InvalidInput("every concept needs a code")
    if any(not spec.name.strip() for spec in specs):
        raise InvalidInput("every concept needs a name")
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise InvalidInput(f"concept codes must be unique; repeated: {', '.join(duplicates)}")
    for code, name in RESERVED_CONCEPTS.items():
        if code not in codes:
            specs.append(ConceptSpec(code=code, name=name))
    parent = {spec.code: spec.parent_code for spec in specs}
    for spec in specs:
        if spec.parent_code and spec.parent_code not in parent:
            raise InvalidInput(f"concept {spec.code}: parent {spec.parent_code} is not in the rubric")
        seen, node = {spec.code}, spec.parent_code
        while node:
            if node in seen:
                raise InvalidInput(f"the rubric tree has a cycle through {node}")
            seen.add(node)
            node = parent.get(node, "")
    if len(specs) - len(RESERVED_CONCEPTS) < 1:
        raise InvalidInput("a rubric needs at least one clinical concept besides the reserved codes")
    return specs


def _concepts_save(*, version: RubricVersion, specs: Sequence[ConceptSpec]) -> None:
    Concept.objects.bulk_create(
        Concept(
            rubric_version=version,
            code=spec.code.strip(),
            name=spec.name.strip(),
            description=spec.description,
            parent_code=spec.parent_code.strip(),
            synonyms=list(spec.synonyms),
            protected=spec.protected,
        )
        for spec in specs
    )


def rubric_create(
    *, name: str, description: str = "", guidelines: str = "", concepts: Sequence[ConceptSpec], by
) -> RubricVersion:
    """A new rubric with its version 1."""
    if not name.strip():
        raise InvalidInput("the rubric needs a name")
    if Rubric.objects.filter(name=name.strip()).exists():
        raise InvalidInput(f"a rubric named '{name.strip()}' already exists")
    specs = concepts_check(concepts=concepts)
    with transaction.atomic():
        rubric = Rubric.objects.create(name=name.strip(), description=description, created_by=by)
        version = RubricVersion.objects.create(rubric=rubric, version=1, guidelines=guidelines)
        _concepts_save(version=version, specs=specs)
        audit_record(
            actor=by, action="rubric.create", obj=version, payload={"rubric": rubric.name, "n_concepts": len(specs)}
        )
    return version


def rubric_version_create(
    *, parent: RubricVersion, guidelines: str, concepts: Sequence[ConceptSpec] | None = None, by
) -> RubricVersion:
    """The next version of a rubric, derived from `parent`; `concepts` None keeps the parent's concepts."""
    if concepts is None:
        concepts = [
            ConceptSpec(
                code=c.code,
                name=c.name,
                parent_code=c.parent_code,
                description=c.description,
                synonyms=tuple(c.synonyms),
                protected=c.protected,
            )
            for c in parent.concepts.all()
        ]
    specs = concepts_check(concepts=concepts)
    with transaction.atomic():
        # Lock the rubric so that two coordinators deriving at once do not both take the same number.
        rubric = Rubric.objects.select_for_update().get(pk=parent.rubric_id)
        latest = rubric.versions.order_by("-version").values_list("version", flat=True).first() or 0
        version = RubricVersion.objects.create(rubric=rubric, version=latest + 1, guidelines=guidelines, parent=parent)
        _concepts_save(version=version, specs=specs)
        audit_record(
            actor=by,
            action="rubric_version.create",
            obj=version,
            payload={"parent": parent.pk, "version": version.version, "n_concepts": len(specs)},
        )
    return version
