"""Architecture rules: pure packages import no web stack; apps import one way, floor by floor."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB_STACK = {"django", "rest_framework", "celery", "drf_spectacular"}
PURE_PACKAGES = ["inference/engine", "annotation/stats"]
# Which apps each app may import (docs/architecture.md): config → annotation, inference → features → accounts.
# `clinical` is a top floor like config: it wires annotation's labels to inference's models.
ALLOWED = {
    "clinical": {"clinical", "annotation", "inference", "features", "accounts"},
    "accounts": {"accounts"},
    "features": {"features", "accounts"},
    "annotation": {"annotation", "features", "accounts"},
    "inference": {"inference", "features", "accounts"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_package_imports_no_web_stack(package):
    files = _python_files(package)
    assert files, f"{package} has no modules"
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.split(".")[0] in WEB_STACK)
        for path in files
    }
    assert not {path: names for path, names in offenders.items() if names}


@pytest.mark.parametrize("app", sorted(ALLOWED))
def test_app_imports_only_downward(app):
    project_apps = set(ALLOWED) | {"config"}
    offenders = {}
    for path in _python_files(app):
        wrong = sorted(
            name
            for name in _imports(path)
            if name.split(".")[0] in project_apps and name.split(".")[0] not in ALLOWED[app]
        )
        if wrong:
            offenders[str(path.relative_to(ROOT))] = wrong
    assert not offenders
