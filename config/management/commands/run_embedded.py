"""run_embedded: the web server, one Celery worker and Celery beat (the job sweeper) from one command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

FRIENDLY_NOT_FOUND = "config.middleware.FriendlyNotFound"


class Command(BaseCommand):
    help = "Serve the web UI, run one worker (queues cpu and gpu) and beat (the job sweeper) until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings")}
        # --pool=solo: the filesystem broker and SQLite want one consumer process, not a prefork pool.
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "cpu,gpu",
                "--pool=solo",
                "-n",
                "embedded@%h",
                "-l",
                "warning",
            ],
            env=env,
        )
        # Beat sends both sweepers (jobs, round statistics) every JOB_SWEEP_SECONDS: expired leases and lost
        # messages are re-sent (CELERY_BEAT_SCHEDULE in config/settings.py).
        beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "warning",
                "-s",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
            env=env,
        )
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"Concord is running at {url}"))
        self.stdout.write(
            f"  database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
            f"broker: {settings.CELERY_BROKER_URL.split('://')[0]}, worker pid {worker.pid}, beat pid {beat.pid}"
        )
        self.stdout.write("  log in with one of the accounts seed_demo printed (passwords in var/demo_passwords.txt)")
        # Django's debug 404 page would list the URL map to anyone: show Concord's own instead.
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, FRIENDLY_NOT_FOUND]
        # A plain SIGTERM (kill, a process manager) would end this process without the `finally` below and
        # orphan the worker and beat: turn it into an exit that runs it, as Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            for process in (beat, worker):
                process.terminate()
            for process in (beat, worker):
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
