"""Responses never show absolute server paths: artifact paths become relative names, others their file name."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from django.conf import settings

# An absolute POSIX path of at least two components, not part of a URL (`https://host/a/b`) or a word.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.@+-]+/)+[\w.@+-]*")


def public_path(path: str) -> str:
    """`ARTIFACT_ROOT/saes/job-3` → `saes/job-3`; any other absolute path → its last component."""
    root = str(settings.ARTIFACT_ROOT).rstrip("/") + "/"
    if path.startswith(root):
        return path[len(root) :]
    return PurePosixPath(path).name or path


def without_server_paths(value):
    """The same JSON-like value with every absolute path inside its strings made public (recursively)."""
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(lambda match: public_path(match.group(0)), value)
    if isinstance(value, dict):
        return {key: without_server_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_server_paths(item) for item in value]
    return value
