"""Item 7: the job modules import one way (no circle, not even through a function-level import), one task
runs every job by id, and one registry knows every kind."""

from __future__ import annotations

import ast
from pathlib import Path

from inference.models import Job
from inference.registry import KINDS

INFERENCE = Path(__file__).resolve().parents[2] / "inference"
# Every module of the app, found on disk (a new one is checked without editing this list); a subpackage
# (engine, management, migrations) counts as one node made of all its files.
MODULES = sorted(
    {path.stem for path in INFERENCE.glob("*.py") if path.stem != "__init__"}
    | {path.parent.name for path in INFERENCE.glob("*/__init__.py")}
)


def _files(module: str) -> list[Path]:
    single = INFERENCE / f"{module}.py"
    return [single] if single.is_file() else sorted((INFERENCE / module).rglob("*.py"))


def _absolute(node: ast.ImportFrom, path: Path) -> list[str]:
    """The dotted names an ImportFrom reaches, relative levels resolved against the file's package."""
    if node.level == 0:
        base = node.module or ""
    else:
        package = list(path.relative_to(INFERENCE.parent).with_suffix("").parts[:-1])
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    return [base] if node.module else [f"{base}.{alias.name}" for alias in node.names]


def _imports(module: str) -> set[str]:
    """Sibling inference modules that `module` imports anywhere in its body, function-level imports too."""
    names: list[str] = []
    for path in _files(module):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names.extend(_absolute(node, path))
                if node.module == "inference" or (node.level == 1 and not node.module and path.parent == INFERENCE):
                    names.extend(f"inference.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
    found = {name.split(".")[1] for name in names if name.startswith("inference.") and name.count(".") >= 1}
    return {name for name in found if name in MODULES and name != module}


def test_the_module_list_is_discovered_and_the_parser_sees_function_level_imports():
    assert {"drift", "steering", "protected", "runtime", "jobs", "services", "engine", "management"} <= set(MODULES)
    # drift.py imports runtime only inside its functions
    assert "runtime" in _imports("drift") and "services" in _imports("tasks")


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
    assert graph["progress"] == {"models"} and graph["engine"] == set()
    assert "services" not in graph["jobs"] | graph["drift"] | graph["steering"] | graph["registry"]
    assert "tasks" not in graph["services"]


def test_one_registry_knows_every_job_kind_and_one_task_runs_them():
    assert set(KINDS) == set(Job.Kind.values)
    assert {spec.queue for spec in KINDS.values()} <= {"cpu", "gpu"}
    from config.celery import app

    app.loader.import_default_modules()
    names = {name for name in app.tasks if name.startswith("inference.")}
    assert names == {"inference.run_job", "inference.sweep_jobs"}
