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


def _validated(line: int, raw: dict) -> SnippetRecord:
    text = raw.get("text")
    if not isinstance(text, str) or not text.strip():
        raise CorpusFormatError(f"line {line}: 'text' is missing or empty")
    external_id = raw.get("external_id")
    if isinstance(external_id, int):
        external_id = str(external_id)
    if not isinstance(external_id, str) or not external_id.strip():
        raise CorpusFormatError(f"line {line}: 'external_id' is missing or empty")
    metadata = raw.get("metadata") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError as error:
            raise CorpusFormatError(f"line {line}: 'metadata' is not valid JSON ({error.msg})") from None
    if not isinstance(metadata, dict):
        raise CorpusFormatError(f"line {line}: 'metadata' must be a JSON object")
    tags = raw.get("concept_tags") or []
    if isinstance(tags, str):
        stripped = tags.strip()
        if stripped.startswith("["):
            try:
                tags = json.loads(stripped)
            except json.JSONDecodeError as error:
                raise CorpusFormatError(f"line {line}: 'concept_tags' is not valid JSON ({error.msg})") from None
        else:
            tags = [t.strip() for t in stripped.split(";") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise CorpusFormatError(f"line {line}: 'concept_tags' must be a list of non-empty strings")
    return SnippetRecord(line=line, external_id=external_id.strip(), text=text, metadata=metadata,
                         concept_tags=tuple(tags))


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusFormatError(f"line {line_number}: not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise CorpusFormatError(f"line {line_number}: expected a JSON object")
            yield line_number, row


def _csv_rows(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "external_id"} - set(reader.fieldnames or [])
        if missing:
            raise CorpusFormatError(f"line 1: CSV header lacks column(s) {', '.join(sorted(missing))}")
        for row in reader:
            if None in row:
                raise CorpusFormatError(f"line {reader.line_num}: more fields than the header names")
            yield reader.line_num, row


def read_corpus_file(path: Path) -> Iterator[SnippetRecord]:
    """Yield validated records; raise CorpusFormatError naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise CorpusFormatError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        rows = _jsonl_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise CorpusFormatError(f"{path.name}: unsupported format '{suffix}' (use .jsonl or .csv)")
    seen: dict[str, int] = {}
    for line, raw in rows:
        record = _validated(line, raw)
        if record.external_id in seen:
            raise CorpusFormatError(
                f"line {line}: external_id '{record.external_id}' repeats line {seen[record.external_id]}"
            )
        seen[record.external_id] = line
        yield record


def count_lines(path: Path) -> int:
    with Path(path).open("rb") as handle:
        return sum(1 for _ in handle)
