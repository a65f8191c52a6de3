"""Item 7: the job modules import one way (no circle, not even through a function-level import), one task
runs every job by id, and one registry knows every kind."""

from __future__ import annotations

import ast
from pathlib import Path

from inference.models import Job
from inference.registry import KINDS

INFERENCE = Path(__file__).resolve().parents[2] / "inference"
MODULES = ("jobs", "services", "tasks", "progress", "registry", "broker", "uploads", "selectors", "views", "apis")


def _imports(module: str) -> set[str]:
    """Sibling inference modules that `module` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse((INFERENCE / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level == 1 and name:
                found.add(name.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif name.startswith("inference."):
                found.add(name.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("inference."))
    return {name for name in found if name in MODULES and name != module}


def test_the_job_modules_form_no_import_circle():
    graph = {module: _imports(module) for module in MODULES}
    visiting, done = set(), set()

    def visit(module, path):
        assert module not in visiting, " → ".join([*path, module])
        if module in done:
            return
        visiting.add(module)
        for target in graph[module]:
            visit(target, [*path, module])
        visiting.discard(module)
        done.add(module)

    for module in MODULES:
        visit(module, [])
    assert graph["progress"] == set() and "services" not in graph["jobs"] and "tasks" not in graph["services"]


def test_one_registry_knows_every_job_kind_and_one_task_runs_them():
    assert set(KINDS) == set(Job.Kind.values)
    assert {spec.queue for spec in KINDS.values()} <= {"cpu", "gpu"}
    from config.celery import app

    app.loader.import_default_modules()
    names = {name for name in app.tasks if name.startswith("inference.")}
    assert names == {"inference.run_job", "inference.sweep_jobs"}
