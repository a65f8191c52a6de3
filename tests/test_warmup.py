"""The gunicorn master's warm-up (config/warmup.py): every project template compiled and cached before the
workers fork, no database connection left open to cross the fork."""

from __future__ import annotations

from django.db import connections
from django.template import engines

from config.warmup import project_template_names, warm


def test_warm_compiles_every_project_template_into_the_cached_loader():
    names = warm()
    assert names == project_template_names()
    assert {"base.html", "annotation/item.html", "registration/login.html"} <= set(names)
    assert not any(name.startswith(("admin/", "rest_framework/")) for name in names)  # third-party: not ours
    cached_loader = engines["django"].engine.template_loaders[0]
    assert type(cached_loader).__name__ == "Loader" and "cached" in type(cached_loader).__module__
    cached = set(cached_loader.get_template_cache)
    assert set(names) <= cached
    assert all(connection.connection is None for connection in connections.all())
