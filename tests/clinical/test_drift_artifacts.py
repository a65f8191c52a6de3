"""Drift-audit captures: folders named by the job's UUID (two databases sharing one ARTIFACT_ROOT never
touch each other's), and activation sets registered only when the audit succeeds (a cancelled audit
registers nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from features.models import ActivationSet
from inference.models import Job
from inference.services import drift_audit_request, job_cancel, job_run
from tests.clinical.test_drift_api import _other_corpus


@pytest.mark.django_db
def test_a_drift_audit_captures_into_folders_named_by_its_uuid_and_leaves_others_alone(tiny_world):
    corpus = _other_corpus(tiny_world.home)
    job = drift_audit_request(sae=tiny_world.sae, corpus=corpus, enqueue=False)
    # Another database on the same ARTIFACT_ROOT whose job and corpus have the same primary keys owns
    # this folder (the name the audit used to choose): it must survive.
    theirs = Path(settings.ARTIFACT_ROOT) / "activations" / f"drift-job-{job.pk}-corpus-{corpus.pk}"
    theirs.mkdir(parents=True, exist_ok=True)
    (theirs / "manifest.json").write_text("{}")
    job = job_run(job_id=job.pk)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert (theirs / "manifest.json").read_text() == "{}"
    captured = ActivationSet.objects.filter(source_job_id=job.pk)
    assert {row.corpus_id for row in captured} == {corpus.pk, tiny_world.corpus.pk}
    for row in captured:
        assert Path(row.artifact_uri).name == f"{job.uuid}-corpus-{row.corpus_id}"
        assert (Path(row.artifact_uri) / "manifest.json").is_file()


@pytest.mark.django_db
def test_a_drift_audit_cancelled_after_its_captures_registers_no_activation_set(tiny_world):
    corpus = _other_corpus(tiny_world.home)
    job = drift_audit_request(sae=tiny_world.sae, corpus=corpus, enqueue=False)
    seen: list[str] = []

    def cancel_once_the_reference_is_captured(fraction: float, message: str) -> None:
        seen.append(message)
        if message.startswith("encoding") and Job.objects.get(pk=job.pk).status == Job.Status.RUNNING:
            job_cancel(job=job, by=None)

    job = job_run(job_id=job.pk, echo=cancel_once_the_reference_is_captured)
    assert job.status == Job.Status.CANCELLED
    assert any(message.startswith("capturing") for message in seen)  # a capture did happen before the cancel
    assert not ActivationSet.objects.filter(source_job_id=job.pk).exists()
    assert ActivationSet.objects.filter(hook_point=tiny_world.sae.hook_point).count() == 1  # the fixture's own
