"""The embedded demo: `seed_demo --quick` end to end on PostgreSQL with a real Celery worker."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import Profile, Role
from annotation import selectors
from annotation.models import PLATFORM_CONSENSUS_METHOD, Assignment, Concept, Consensus, RaterReliability, Round
from features.models import SAE, Corpus, Latent, LatentExample

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.django_db(transaction=True)
def test_seed_demo_quick_via_worker_builds_everything_and_is_idempotent(celery_worker, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", "--quick", "--via-worker", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "demo ready" in text and "dr_ash" in text  # passwords are printed once
    real = Profile.objects.exclude(user__username__startswith="sim_")
    assert real.filter(role__in=[Role.PHYSICIAN, Role.SENIOR]).count() == 8
    assert Profile.objects.filter(role=Role.SENIOR).count() == 2
    assert Profile.objects.filter(role=Role.CLINICIAN).count() == 1 and "clinician" in text  # issue 12
    simulated_people = Profile.objects.filter(user__username__startswith="sim_")
    assert simulated_people.count() == 6 and not simulated_people.filter(user__is_active=True).exists()
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
    round_ = Round.objects.get(simulated=False)
    assert (round_.kind, round_.status, round_.overlap) == ("calibration", "open", 3)
    assert Assignment.objects.filter(round=round_).exists()
    assert not Assignment.objects.filter(round=round_, rater__username__startswith="sim_").exists()

    # The closed, revealed round of simulated physicians shows the whole loop at once.
    demo = Round.objects.get(simulated=True)
    assert (demo.kind, demo.status, demo.routing_min_rounds) == ("calibration", "revealed", 1)
    assert not set(demo.latents.values_list("pk", flat=True)) & set(round_.latents.values_list("pk", flat=True))
    rows = Consensus.objects.of_round(demo.pk).platform()
    assert rows.count() == demo.latents.count() and all(row.n_raters == 3 for row in rows)
    reliability = RaterReliability.objects.of_round(demo.pk)
    assert reliability.count() == 6 and all(row.test_retest_n_pairs >= 3 for row in reliability)
    assert all(row.test_retest is not None and row.test_retest_low is not None for row in reliability)
    assert demo.agreement_reports.get(metric="test_retest").n_pairable >= 18
    sae_rows = Consensus.objects.of_sae(sae.pk).platform().filter(latent__in=demo.latents.all())
    assert {row.routing for row in sae_rows} <= {"consensus", "adjudicate"}
    senior = Profile.objects.get(user__username="dr_ash").user
    assert len(selectors.adjudication_queue(user=senior)) >= 1  # split latents await a senior
    assert min(max(row.posterior.values()) for row in rows) < 0.6  # some soft labels are visibly uncertain
    assert max(max(row.posterior.values()) for row in rows) > 0.9  # and some are clear
    assert sae_rows.filter(routing="consensus").exists()
    assert PLATFORM_CONSENSUS_METHOD == "bayesian-ds"
    out_file = tmp_path / "export.csv"
    call_command("export_labels", "--sae", str(sae.pk), "--format", "csv", "--out", str(out_file))
    assert "sim_" not in out_file.read_text() and str(demo.pk) not in {
        line.split(",")[1] for line in out_file.read_text().splitlines()[1:]
    }
    assert (tmp_path / "demo_passwords.txt").stat().st_mode & 0o077 == 0

    again = io.StringIO()
    call_command("seed_demo", "--quick", "--via-worker", stdout=again, stderr=io.StringIO())
    assert "New demo accounts" not in again.getvalue()
    assert (SAE.objects.count(), Round.objects.count(), Corpus.objects.count()) == (1, 2, 2)
