"""gunicorn settings for the web process."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Load Django once in the master: workers fork warm, so the first requests pay no import cost.
preload_app = True
keepalive = 5
timeout = 60
accesslog = "-"


def when_ready(server):
    """In the master, after the app is loaded and before any worker forks: see config/warmup.py."""
    from config.warmup import warm

    names = warm()
    server.log.info("warmed the URL resolver and %d templates before forking workers", len(names))
