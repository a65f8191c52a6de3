"""A job run by a management command and stopped with Ctrl-C ends `cancelled`, never left `running` for the
sweeper to hand to a Celery worker once its lease runs out."""

from __future__ import annotations

import signal
import subprocess
import sys

import numpy as np
import pytest

from inference.models import Job
from inference.services import jobs_sweep
from tests.inference.processes import ROOT, wait_until, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_of_train_sae_cancels_its_job_and_the_sweeper_never_re_sends_it(tmp_path, postgres, settings):
    path = tmp_path / "acts.npy"
    np.save(path, np.random.default_rng(5).standard_normal((4000, 16)).astype(np.float32))
    settings.JOB_LEASE_SECONDS = 1.0  # the command's lease, set below, is short too: expired by the sweep
    command = [sys.executable, "manage.py", "train_sae", "--activations", str(path), "--arch", "topk"]
    command += ["--width", "32", "--k", "4", "--steps", "200000", "--batch-size", "64", "--out", str(tmp_path / "sae")]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=worker_env("memory://", JOB_LEASE_SECONDS="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job = wait_until(
            lambda: Job.objects.filter(kind=Job.Kind.TRAIN_SAE, status="running", progress__gt=0).first(),
            timeout=120,
            what="the command's training to report progress",
            detail=lambda: process.stderr.read() if process.poll() is not None else "",
        )
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0 and f"job {job.pk} interrupted" in stderr, stderr[-2000:]
    job.refresh_from_db()
    assert job.status == "cancelled" and "interrupted" in job.message and job.lease_expires_at is None
    assert job.device_seconds > 0  # the time it ran still counts
    assert jobs_sweep()["requeued"] == 0
    job.refresh_from_db()
    assert job.status == "cancelled" and job.attempts == 1
