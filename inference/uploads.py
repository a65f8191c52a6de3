"""Uploaded files under ARTIFACT_ROOT/uploads, where every worker can read them (a leaf module)."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings


def upload_store(*, uploaded, prefix: str) -> Path:
    """Keep an uploaded file under ARTIFACT_ROOT/uploads so that any worker can read it."""
    directory = Path(settings.ARTIFACT_ROOT) / "uploads" / f"{prefix}-{uuid.uuid4()}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / Path(uploaded.name).name
    with path.open("wb") as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)
    return path


def upload_discard(*, path: Path) -> None:
    """Remove an upload once its job has finished (either way), with its folder; other files are left alone."""
    uploads = (Path(settings.ARTIFACT_ROOT) / "uploads").resolve()
    path = Path(path).resolve()
    if uploads not in path.parents:
        return
    path.unlink(missing_ok=True)
    if path.parent != uploads and not any(path.parent.iterdir()):
        path.parent.rmdir()
