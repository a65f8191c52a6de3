"""The `agreement` and `consensus` management commands: DESIGN §6 options, JSON shapes, exit status 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "stats" / "fixtures"
KRIPPENDORFF_2011 = FIXTURES / "krippendorff_2011.csv"
DAWID_SKENE_1979 = FIXTURES / "dawid_skene_1979.csv"


def _run(*args: str) -> dict:
    out = StringIO()
    call_command(*args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743421), ("ordinal", 0.815388), ("interval", 0.849107), ("ratio", 0.797403)],
)
def test_agreement_prints_design_json(level, published):
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", reliability data with missing values.
    payload = _run(
        "agreement", "--csv", str(KRIPPENDORFF_2011), "--level", level, "--bootstrap", "200", "--seed", "3", "--json"
    )
    assert list(payload) == ["alpha", "level", "ci", "n_units", "n_raters", "n_pairable"]
    assert payload["alpha"] == pytest.approx(published, abs=5e-7)
    assert payload["level"] == level
    low, high = payload["ci"]
    assert low <= payload["alpha"] <= high
    assert (payload["n_units"], payload["n_raters"], payload["n_pairable"]) == (11, 4, 40)


def test_agreement_custom_columns_and_no_bootstrap(tmp_path):
    path = tmp_path / "renamed.csv"
    text = KRIPPENDORFF_2011.read_text().replace("latent_id,rater,concept_code", "item,coder,score")
    path.write_text(text)
    payload = _run(
        "agreement",
        "--csv",
        str(path),
        "--unit-col",
        "item",
        "--rater-col",
        "coder",
        "--value-col",
        "score",
        "--level",
        "nominal",
        "--bootstrap",
        "0",
        "--json",
    )
    assert payload["ci"] is None and payload["alpha"] == pytest.approx(0.743421, abs=5e-7)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--level", "cardinal"], "unknown level 'cardinal'"),
        (["--level", "nominal", "--value-col", "score"], "column 'score' is not in"),
        (["--level", "nominal", "--bootstrap", "-1"], "--bootstrap"),
    ],
)
def test_agreement_bad_input_exits_2(arguments, message):
    with pytest.raises(CommandError, match=message) as caught:
        call_command("agreement", "--csv", str(KRIPPENDORFF_2011), *arguments, "--json")
    assert caught.value.returncode == 2


def test_agreement_empty_or_missing_file_exits_2(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CommandError, match="is empty") as caught:
        call_command("agreement", "--csv", str(empty), "--level", "nominal", "--json")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="no such file") as caught:
        call_command("agreement", "--csv", str(tmp_path / "absent.csv"), "--level", "nominal", "--json")
    assert caught.value.returncode == 2


def test_agreement_non_numeric_interval_values_exit_2(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text("latent_id,rater,concept_code\nL1,a,PNA\nL1,b,CHF\n")
    with pytest.raises(CommandError, match="not a number") as caught:
        call_command("agreement", "--csv", str(path), "--level", "interval", "--json")
    assert caught.value.returncode == 2


def test_consensus_dawid_skene_prints_design_json():
    # Dawid & Skene (1979) Table 1 data; patient 1 is class 1 for every observer.
    payload = _run("consensus", "--csv", str(DAWID_SKENE_1979), "--method", "dawid-skene", "--json")
    assert set(payload) == {"method", "units", "raters"} and payload["method"] == "dawid-skene"
    assert len(payload["units"]) == 45
    patient = payload["units"]["p1"]
    assert set(patient) == {"label", "posterior", "entropy", "n_labels", "n_raters"} and patient["label"] == "1"
    # Observer 1 read every patient three times: 7 judgments by 5 distinct observers.
    assert (patient["n_labels"], patient["n_raters"]) == (7, 5)
    assert set(patient["posterior"]) == {"1", "2", "3", "4"}
    assert set(payload["raters"]) == {"o1", "o2", "o3", "o4", "o5"}
    assert all(set(rater) == {"accuracy", "weight"} for rater in payload["raters"].values())


@pytest.mark.parametrize("method", ["majority", "weighted"])
def test_consensus_votes(method):
    payload = _run("consensus", "--csv", str(DAWID_SKENE_1979), "--method", method, "--json")
    assert payload["method"] == method
    assert payload["units"]["p11"]["label"] == "4"


def test_consensus_weighted_reads_repeats_and_rationales(tmp_path):
    path = tmp_path / "export.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["latent_id", "rater", "concept_code", "concept_name", "rationale", "is_repeat"])
        for index in range(8):
            code, name = [("PNA", "pneumonia"), ("CHF", "heart failure")][index % 2]
            evidence = ["consolidation and cough", "edema and orthopnea"][index % 2]
            writer.writerow([f"L{index}", "steady", code, name, f"{name}: {evidence}", "false"])
            writer.writerow([f"L{index}", "steady", code, name, f"{name}: {evidence}", "true"])
            writer.writerow([f"L{index}", "other", code, name, evidence, "false"])
    payload = _run("consensus", "--csv", str(path), "--method", "weighted", "--json")
    # "steady" repeated every label identically (test–retest kappa 1), so weighs more than "other".
    assert payload["raters"]["steady"]["weight"] > payload["raters"]["other"]["weight"]


def test_consensus_bad_input_exits_2(tmp_path):
    with pytest.raises(CommandError, match="unknown method 'vote'") as caught:
        call_command("consensus", "--csv", str(DAWID_SKENE_1979), "--method", "vote", "--json")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="column 'who' is not in") as caught:
        call_command("consensus", "--csv", str(DAWID_SKENE_1979), "--rater-col", "who", "--method", "majority")
    assert caught.value.returncode == 2
    header_only = tmp_path / "header.csv"
    header_only.write_text("latent_id,rater,concept_code\n")
    with pytest.raises(CommandError, match="no rows") as caught:
        call_command("consensus", "--csv", str(header_only), "--method", "majority", "--json")
    assert caught.value.returncode == 2


def test_manage_py_agreement_exits_2_with_message_on_stderr(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    completed = subprocess.run(
        [sys.executable, "manage.py", "agreement", "--csv", str(empty), "--level", "nominal", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert "is empty" in completed.stderr and completed.stdout == ""


def test_consensus_bayesian_ds_prints_design_json_with_counts():
    payload = _run("consensus", "--csv", str(DAWID_SKENE_1979), "--method", "bayesian-ds", "--json")
    assert payload["method"] == "bayesian-ds" and len(payload["units"]) == 45
    patient = payload["units"]["p1"]  # class 1 for every observer on every reading
    assert patient["label"] == "1" and patient["posterior"]["1"] > 0.9
    assert (patient["n_labels"], patient["n_raters"]) == (7, 5)
    assert all(0 < rater["accuracy"] <= 1 for rater in payload["raters"].values())


def test_agreement_over_one_unit_says_undefined(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("latent_id,rater,concept_code\nL1,a,PNA\nL1,b,CHF\nL2,a,PNA\n")
    payload = _run("agreement", "--csv", str(path), "--level", "nominal", "--json")
    assert payload["alpha"] is None and payload["ci"] is None and payload["n_units"] == 1
    assert payload["reason"] == (
        "undefined (only one unit has two or more values; alpha needs at least two pairable units)"
    )
    out = StringIO()
    call_command("agreement", "--csv", str(path), "--level", "nominal", stdout=out)
    assert out.getvalue().startswith("nominal alpha undefined (only one unit")
