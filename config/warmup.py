"""Warm a web process before it serves: in gunicorn's master (preload_app), before the workers fork.

Each worker would otherwise pay, on its first requests, for importing every view module (the URL
resolver fills lazily) and for compiling every template it renders (Django's cached template loader
fills lazily, per process). Done once in the master, forked workers inherit both. Measured with
bench/web_load.py (50 physicians, 3 s reading): the first 10 s of the run had a p95 of 1.8 s and a
maximum of 3.3 s against ~0.2 s afterwards, all of it workers warming up under the opening burst.
No database connection is opened here (a connection must never cross a fork); any left open by an
import is closed.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import connections
from django.template import engines
from django.template.utils import get_app_template_dirs
from django.urls import get_resolver


def project_template_names() -> list[str]:
    """Names of the templates shipped in this repository (the project's DIRS and its own apps), not those
    of third-party packages, which the pages only reach through ours."""
    root = Path(settings.BASE_DIR).resolve()
    folders = [Path(folder) for engine in settings.TEMPLATES for folder in engine.get("DIRS", [])]
    folders += [Path(folder) for folder in get_app_template_dirs("templates")]
    names = set()
    for folder in folders:
        folder = folder.resolve()
        if folder.is_relative_to(root) and not {"site-packages", "dist-packages"} & set(folder.parts):
            names.update(str(path.relative_to(folder)) for path in folder.rglob("*.html"))
    return sorted(names)


def warm() -> list[str]:
    """Import every view (through the URL resolver) and compile every project template; returns the
    template names compiled."""
    get_resolver().url_patterns  # noqa: B018 - importing the URLconf imports every view module
    get_resolver()._populate()
    engine = engines["django"]
    names = project_template_names()
    for name in names:
        engine.get_template(name)
    connections.close_all()
    return names
