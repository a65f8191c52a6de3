"""Reading corpus files (JSONL or CSV) into validated snippet records, naming the line of any fault."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class CorpusFormatError(ValueError):
    """A corpus file that cannot be imported; the message names the line."""


@dataclass(frozen=True)
class SnippetRecord:
    line: int
    external_id: str
    text: str
    metadata: dict = field(default_factory=dict)
    concept_tags: tuple[str, ...] = ()


DEFAULT_MAX_TEXT_CHARS = 20_000


@dataclass(frozen=True)
class CorpusLimits:
    """Size limits on one imported line besides its text (settings MAX_METADATA_CHARS, MAX_JSON_DEPTH,
    MAX_CONCEPT_TAGS, MAX_CONCEPT_TAG_CHARS; external_id by the column's length). Metadata and tags are
    stored as they come and served with every snippet, so a 5 MB metadata object went to every reader."""

    metadata_chars: int = 10_000  # of the metadata object written as JSON
    metadata_depth: int = 20
    concept_tags: int = 50
    concept_tag_chars: int = 200
    external_id_chars: int = 200


def _depth(value) -> int:
    """Nesting depth of a decoded JSON value (an object or list counts one level); iterative."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _loads(line: int, text: str, what: str = ""):
    subject = f"{what} is " if what else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CorpusFormatError(f"line {line}: {subject}not valid JSON ({error.msg})") from None
    except RecursionError:
        raise CorpusFormatError(f"line {line}: {subject}nested too deeply") from None


def _has_nul(value) -> bool:
    # json.dumps writes NUL as \u0000 wherever it is (keys, nested strings); PostgreSQL refuses it.
    return "\x00" in value if isinstance(value, str) else "\\u0000" in json.dumps(value)


def _validated(line: int, raw: dict, max_text_chars: int, limits: CorpusLimits) -> SnippetRecord:
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise CorpusFormatError(f"line {line}: 'text' is missing or empty")
    if len(text) > max_text_chars:
        raise CorpusFormatError(
            f"line {line}: 'text' is {len(text)} characters; the limit is {max_text_chars} (MAX_SNIPPET_CHARS)"
        )
    for name in ("text", "external_id", "metadata", "concept_tags"):
        if raw.get(name) is not None and _has_nul(raw[name]):
            raise CorpusFormatError(f"line {line}: '{name}' holds a NUL character")
    external_id = raw.get("external_id")
    if isinstance(external_id, int):
        external_id = str(external_id)
    if not isinstance(external_id, str) or not external_id.strip():
        raise CorpusFormatError(f"line {line}: 'external_id' is missing or empty")
    if len(external_id.strip()) > limits.external_id_chars:
        raise CorpusFormatError(
            f"line {line}: 'external_id' is {len(external_id.strip())} characters; "
            f"the limit is {limits.external_id_chars}"
        )
    metadata = raw.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = _loads(line, metadata, "'metadata'")
        if _has_nul(metadata):
            raise CorpusFormatError(f"line {line}: 'metadata' holds a NUL character")
    if not isinstance(metadata, dict):
        raise CorpusFormatError(f"line {line}: 'metadata' must be a JSON object")
    if (depth := _depth(metadata)) > limits.metadata_depth:
        raise CorpusFormatError(
            f"line {line}: 'metadata' is nested {depth} levels deep; the limit is {limits.metadata_depth} "
            "(MAX_JSON_DEPTH)"
        )
    if (size := len(json.dumps(metadata, ensure_ascii=False))) > limits.metadata_chars:
        raise CorpusFormatError(
            f"line {line}: 'metadata' is {size} characters as JSON; the limit is {limits.metadata_chars} "
            "(MAX_METADATA_CHARS)"
        )
    tags = raw.get("concept_tags") or []
    if isinstance(tags, str):
        stripped = tags.strip()
        if stripped.startswith("["):
            tags = _loads(line, stripped, "'concept_tags'")
        else:
            tags = [t.strip() for t in stripped.split(";") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise CorpusFormatError(f"line {line}: 'concept_tags' must be a list of non-empty strings")
    if len(tags) > limits.concept_tags:
        raise CorpusFormatError(
            f"line {line}: 'concept_tags' has {len(tags)} tags; the limit is {limits.concept_tags} (MAX_CONCEPT_TAGS)"
        )
    if tags and (longest := max(len(t) for t in tags)) > limits.concept_tag_chars:
        raise CorpusFormatError(
            f"line {line}: a concept tag is {longest} characters; the limit is {limits.concept_tag_chars} "
            "(MAX_CONCEPT_TAG_CHARS)"
        )
    return SnippetRecord(
        line=line, external_id=external_id.strip(), text=text, metadata=metadata, concept_tags=tuple(tags)
    )


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = _loads(line_number, line)
            if not isinstance(row, dict):
                raise CorpusFormatError(f"line {line_number}: expected a JSON object")
            yield line_number, row


def _csv_rows(path: Path, max_field_chars: int) -> Iterator[tuple[int, dict]]:
    # Room for a too-long text to be read whole and refused by _validated with its line and length.
    csv.field_size_limit(max(csv.field_size_limit(), 4 * max_field_chars, 1 << 20))
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            missing = {"text", "external_id"} - set(reader.fieldnames or [])
            if missing:
                raise CorpusFormatError(f"line 1: CSV header lacks column(s) {', '.join(sorted(missing))}")
            for row in reader:
                if None in row:
                    raise CorpusFormatError(f"line {reader.line_num}: more fields than the header names")
                yield reader.line_num, row
        except csv.Error as error:
            raise CorpusFormatError(f"line {reader.line_num + 1}: not valid CSV ({error})") from None


def read_corpus_file(
    path: Path, *, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, limits: CorpusLimits | None = None
) -> Iterator[SnippetRecord]:
    """Yield validated records; raise CorpusFormatError naming the first bad line."""
    limits = limits or CorpusLimits()
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(f"{path.name}: no such file")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        rows = _jsonl_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path, max_text_chars)
    else:
        raise CorpusFormatError(f"{path.name}: unsupported format '{suffix}' (use .jsonl or .csv)")
    seen: dict[str, int] = {}
    for line, raw in rows:
        record = _validated(line, raw, max_text_chars, limits)
        if record.external_id in seen:
            raise CorpusFormatError(
                f"line {line}: external_id '{record.external_id}' repeats line {seen[record.external_id]}"
            )
        seen[record.external_id] = line
        yield record


def count_lines(path: Path) -> int:
    """The number of lines; raises CorpusFormatError naming the first line that is not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(f"{path.name}: no such file")
    n = 0
    with path.open("rb") as handle:
        for n, raw in enumerate(handle, start=1):  # noqa: B007 - n is the count afterwards
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise CorpusFormatError(
                    f"line {n}: not UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}); "
                    "save the file as UTF-8"
                ) from None
    return n
