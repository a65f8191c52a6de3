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
    report = _audit(
        *("--sae", str(tiny_world.sae.pk), "--corpus", corpus.name, "--reference", tiny_world.corpus.name),
        *("--fdr", "0.2", "--min-abs-log2-ratio", "0.5"),
    )
    assert set(report) == REPORT_KEYS
    job = Job.objects.filter(kind="drift_audit").latest("pk")
    assert job.created_by is None
    assert (job.result["report"]["config"]["fdr"], job.result["report"]["config"]["min_abs_log2_ratio"]) == (0.2, 0.5)
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


@pytest.mark.django_db
def test_every_latents_rates_go_to_an_artifact_and_the_job_keeps_the_summary(tiny_world, people, client, settings):
    import numpy as np

    from inference.drift import drift_rates_read

    corpus = _other_corpus(tiny_world.home)
    report = _audit("--sae", str(tiny_world.sae.pk), "--corpus", corpus.name, "--by", people["researcher"].username)
    job = Job.objects.filter(kind="drift_audit").latest("pk")
    stored = job.result["report"]
    assert "rates_reference" not in stored and "rates_corpus" not in stored
    assert job.result["rates_uri"] == str(settings.ARTIFACT_ROOT / "drift" / str(job.uuid) / "rates.npz")
    arrays = drift_rates_read(job.result["rates_uri"])
    d_sae = tiny_world.sae.d_sae
    assert arrays["rates_corpus"].shape == (d_sae,) and arrays["firing_counts_reference"].shape == (d_sae,)
    assert arrays["n_tokens_corpus"] == stored["n_tokens_corpus"]
    assert np.allclose(arrays["rates_corpus"], arrays["firing_counts_corpus"] / arrays["n_tokens_corpus"])
    grid = stored["rate_histogram"]
    assert grid["n_latents"] + grid["never_fired"] == d_sae
    assert sum(n for _, _, n in grid["cells"]) == int(
        ((arrays["rates_reference"] > 0) | (arrays["rates_corpus"] > 0)).sum()
    )
    for flag in report["flagged"]:  # the flagged rows keep their exact rates
        assert flag["rate_corpus"] == pytest.approx(arrays["rates_corpus"][flag["index"]])
    client.force_login(people["researcher"])
    html = client.get(f"/drift/{job.pk}/").content.decode()
    assert html.count('class="cell"') == len(grid["cells"]) and html.count('class="flagged"') == len(report["flagged"])
    assert f"{grid['n_latents']} latents fired in either corpus" in html


@pytest.mark.django_db
def test_an_audit_recorded_with_every_rate_in_its_result_still_draws(tiny_world, people, client):
    """Audits finished before the rates moved to an artifact kept two lists of d_sae rates in Job.result."""
    from inference.services import job_create

    job = job_create(kind=Job.Kind.DRIFT_AUDIT, by=people["researcher"], enqueue=False, parameters={})
    flagged = {"index": 1, "rate_reference": 0.01, "rate_corpus": 0.2, "log_ratio": 4.3, "q_value": 1e-9}
    report = {
        "drift": True,
        "reasons": ["flagged_share"],
        "fve_reference": 0.9,
        "fve_corpus": 0.85,
        "divergence": 0.01,
        "l0_distance": 0.0,
        "mean_l0_reference": 4.0,
        "mean_l0_corpus": 4.0,
        "n_tokens_reference": 100,
        "n_tokens_corpus": 50,
        "n_tested": 3,
        "flagged": [flagged],
        "rates_reference": [0.5, 0.01, 0.0, 0.0],
        "rates_corpus": [0.5, 0.2, 0.0, 0.02],
        "config": {"divergence_threshold": 0.05},
    }
    result = {"sae_id": tiny_world.sae.pk, "corpus_id": tiny_world.corpus.pk, "reference_id": tiny_world.corpus.pk}
    Job.objects.filter(pk=job.pk).update(status="succeeded", result={**result, "report": report})
    client.force_login(people["researcher"])
    html = client.get(f"/drift/{job.pk}/").content.decode()
    assert html.count('class="cell"') == 3 and html.count('class="flagged"') == 1
    assert "3 latents fired in either corpus (1 in neither)" in html
