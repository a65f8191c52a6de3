"""The embedded demo: `seed_demo --quick` end to end on PostgreSQL with a real Celery worker."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import Profile, Role
from annotation.models import Assignment, Concept, Round
from features.models import SAE, Corpus, Latent, LatentExample

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_seed_demo_quick_via_worker_builds_everything_and_is_idempotent(celery_worker, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", "--quick", "--via-worker", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "demo ready" in text and "dr_ash" in text  # passwords are printed once
    assert Profile.objects.filter(role__in=[Role.PHYSICIAN, Role.SENIOR]).count() == 8
    assert Profile.objects.filter(role=Role.SENIOR).count() == 2
    assert Profile.objects.values("institution").distinct().count() == 3
    corpus = Corpus.objects.get(name="demo-clinical-quick")
    assert corpus.n_snippets == 300
    assert Corpus.objects.get(name="demo-discharge").n_snippets == 300  # the drift-audit slice (issue 12)
    assert Concept.objects.filter(code="SEX_GENDER", protected=True).exists()
    sae = SAE.objects.get()
    assert {"fve", "l0", "dead_fraction", "monosemanticity"} <= set(sae.metrics)
    assert LatentExample.objects.filter(latent__sae=sae, kind="top").exists()
    assert Latent.objects.filter(sae=sae).exclude(best_tag="").exists()
    codes = set(Concept.objects.values_list("code", flat=True))
    assert {"HF", "CKD", "UNINTERPRETABLE", "POLYSEMANTIC", "ARTIFACT", "CARDIOVASCULAR"} <= codes
    round_ = Round.objects.get()
    assert (round_.kind, round_.status, round_.overlap) == ("calibration", "open", 3)
    assert Assignment.objects.filter(round=round_).exists()
    assert (tmp_path / "demo_passwords.txt").stat().st_mode & 0o077 == 0

    again = io.StringIO()
    call_command("seed_demo", "--quick", "--via-worker", stdout=again, stderr=io.StringIO())
    assert "New demo accounts" not in again.getvalue()
    assert (SAE.objects.count(), Round.objects.count(), Corpus.objects.count()) == (1, 1, 2)
