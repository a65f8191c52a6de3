"""Drift thresholds: platform defaults in settings (set by DRIFT_<NAME>), overridden per audit from the form, the
API and the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.messages import get_messages

from inference.drift import DRIFT_CONFIG_KEYS, drift_config_check
from inference.models import Job

from .test_drift_api import _other_corpus

ROOT = Path(__file__).resolve().parents[2]


def test_settings_give_the_defaults_and_an_audit_overrides_them(settings):
    settings.DRIFT_THRESHOLDS = {**settings.DRIFT_THRESHOLDS, "fdr": 0.05, "divergence_threshold": 0.2}
    config = drift_config_check({})
    assert set(config) == set(DRIFT_CONFIG_KEYS)
    assert (config["fdr"], config["divergence_threshold"], config["min_abs_log2_ratio"]) == (0.05, 0.2, 1.0)
    assert drift_config_check({"fdr": 0.1, "min_rate": None})["fdr"] == 0.1
    with pytest.raises(ValueError, match="unknown drift thresholds: alpha"):
        drift_config_check({"alpha": 0.1})
    with pytest.raises(ValueError, match="fdr must be in"):
        drift_config_check({"fdr": 1.5})


@pytest.mark.slow
def test_the_environment_sets_the_defaults():
    code = "import django, json; django.setup(); from django.conf import settings; print(json.dumps(settings.DRIFT_THRESHOLDS))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFT_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "DRIFT_FDR": "0.05", "DRIFT_MIN_RATE": "1e-4"},
        capture_output=True,
        text=True,
        check=True,
    )
    thresholds = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(thresholds) == set(DRIFT_CONFIG_KEYS)
    assert (thresholds["fdr"], thresholds["min_rate"], thresholds["fve_drop_threshold"]) == (0.05, 1e-4, 0.1)


@pytest.mark.django_db
def test_the_form_offers_every_threshold_and_launches_with_the_overrides(tiny_world, people, client, settings):
    settings.DRIFT_THRESHOLDS = {**settings.DRIFT_THRESHOLDS, "l0_distance_threshold": 0.4}
    corpus = _other_corpus(tiny_world.home)
    client.force_login(people["researcher"])
    page = client.get("/drift/").content.decode()
    for key in DRIFT_CONFIG_KEYS:
        assert f'name="{key}"' in page
    assert 'placeholder="0.4"' in page  # the default the audit gets when the field stays empty
    body = {"sae": tiny_world.sae.pk, "corpus": corpus.pk, "fdr": "0.2", "min_abs_log2_ratio": "0.5"}
    response = client.post("/drift/", body)
    job = Job.objects.get(kind="drift_audit")
    assert response.status_code == 302 and response["Location"] == f"/drift/{job.pk}/"
    config = job.parameters["config"]
    assert (config["fdr"], config["min_abs_log2_ratio"], config["l0_distance_threshold"]) == (0.2, 0.5, 0.4)


@pytest.mark.django_db
def test_the_form_refuses_a_meaningless_threshold(tiny_world, people, client):
    corpus = _other_corpus(tiny_world.home)
    client.force_login(people["researcher"])
    response = client.post("/drift/", {"sae": tiny_world.sae.pk, "corpus": corpus.pk, "fdr": "1.5"})
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["fdr must be in (0, 1)"]
    response = client.post("/drift/", {"sae": tiny_world.sae.pk, "corpus": corpus.pk, "pseudocount": "-1"})
    assert "greater than or equal to 0" in response.content.decode()
    assert not Job.objects.filter(kind="drift_audit").exists()


def test_validating_thresholds_in_the_web_process_never_imports_torch():
    """Launching an audit validates its thresholds in the web process (form, API): that must not load torch."""
    from tests.conftest import loads_torch

    assert not loads_torch("from inference.drift import drift_config_check\ndrift_config_check({'fdr': 0.05})")
