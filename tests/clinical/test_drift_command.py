"""`manage.py drift_audit` on the tiny host model, in the command's own process: who owns and sees the audit it
records (`--by`), and the issue's interface unchanged without it."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role
from inference.models import Job
from tests import factories

from .test_drift_api import _other_corpus

REPORT_KEYS = {"drift", "fve_reference", "fve_corpus", "divergence", "flagged"}


def _audit(*args: str) -> dict:
    out = io.StringIO()
    call_command("drift_audit", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.django_db
def test_an_audit_run_by_the_command_for_a_researcher_is_theirs_to_follow(tiny_world, people, client):
    corpus = _other_corpus(tiny_world.home)
    report = _audit("--sae", str(tiny_world.sae.pk), "--corpus", corpus.name, "--by", people["researcher"].username)
    assert set(report) == REPORT_KEYS
    job = Job.objects.filter(kind="drift_audit").latest("pk")
    assert job.created_by == people["researcher"]
    client.force_login(people["researcher"])
    assert client.get(f"/drift/{job.pk}/").status_code == 200
    assert client.get(f"/jobs/{job.pk}/").status_code == 200
    client.force_login(people["foreign_researcher"])
    assert client.get(f"/drift/{job.pk}/").status_code == 404


@pytest.mark.django_db
def test_without_by_the_interface_is_unchanged_and_only_admins_follow_the_audit(tiny_world, people, client):
    corpus = _other_corpus(tiny_world.home)
    report = _audit("--sae", str(tiny_world.sae.pk), "--corpus", corpus.name, "--reference", tiny_world.corpus.name)
    assert set(report) == REPORT_KEYS
    job = Job.objects.filter(kind="drift_audit").latest("pk")
    assert job.created_by is None
    client.force_login(people["researcher"])
    assert client.get(f"/drift/{job.pk}/").status_code == 404
    client.force_login(factories.user(role=Role.ADMIN))
    assert client.get(f"/drift/{job.pk}/").status_code == 200


@pytest.mark.django_db
def test_by_names_a_job_runner_who_may_see_the_sae_and_the_corpora(tiny_world, people):
    corpus = _other_corpus(tiny_world.home)
    base = ["--sae", str(tiny_world.sae.pk), "--corpus", corpus.name]
    for who, message in (
        ("nobody-of-that-name", "no active user"),
        (people["physician"].username, "not a researcher or admin"),
        (people["foreign_researcher"].username, "may not see SAE"),
    ):
        with pytest.raises(CommandError, match=message):
            _audit(*base, "--by", who)
    assert not Job.objects.filter(kind="drift_audit").exists()
