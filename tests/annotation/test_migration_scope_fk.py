"""Migration 0003 turns the "round:12" / "sae:3" scope strings into foreign keys, counts distinct raters,
and drops rows whose scope names nothing."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from annotation.models import Consensus, RaterReliability, Round
from tests.annotation import worlds

BEFORE = [("annotation", "0002_round_workflow_fields")]
AFTER = [("annotation", "0003_consensus_scope_fk")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_scope_strings_become_foreign_keys(postgres):
    coordinator = worlds.coordinator()
    people = worlds.raters(per_institution={"a": 3})
    sae = worlds.sae_with_examples(n_latents=2)
    round_ = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=worlds.rubric(),
        raters_list=people,
        overlap=3,
        institutions=[people[0].profile.institution],
    )
    worlds.label_everything(round_, choose=lambda a: "HF")
    # Closed by hand: round_close would queue the statistics job, and the suite's worker writing consensus
    # rows while this test migrates backwards would race it.
    Round.objects.filter(pk=round_.pk).update(status=Round.Status.CLOSED, closed_at=timezone.now())
    latent = sae.latents.get(index=0)
    Consensus.objects.all().delete()
    RaterReliability.objects.all().delete()
    try:
        old = _migrate(BEFORE)
        OldConsensus = old.get_model("annotation", "Consensus")
        OldReliability = old.get_model("annotation", "RaterReliability")
        row = {
            "latent_id": latent.pk,
            "method": "dawid-skene",
            "posterior": {"HF": 1.0},
            "map_concept": "HF",
            "entropy": 0.0,
            "n_labels": 4,
        }
        OldConsensus.objects.create(scope=f"round:{round_.pk}", **row)
        OldConsensus.objects.create(scope=f"sae:{sae.pk}", **row)
        OldConsensus.objects.create(scope="sae:999999", **row)  # names no SAE
        OldConsensus.objects.create(scope="institution:1", **row)  # not a scope at all
        OldReliability.objects.create(rater_id=people[0].pk, scope=f"round:{round_.pk}", weight=0.5)
        OldReliability.objects.create(rater_id=people[0].pk, scope=f"sae:{sae.pk}", weight=0.7)
        _migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    rows = {row.scope: row for row in Consensus.objects.all()}
    assert set(rows) == {f"round:{round_.pk}", f"sae:{sae.pk}"}
    assert rows[f"round:{round_.pk}"].round_id == round_.pk and rows[f"round:{round_.pk}"].sae_id is None
    assert rows[f"sae:{sae.pk}"].sae_id == sae.pk and rows[f"sae:{sae.pk}"].round_id is None
    assert all(row.n_raters == 3 for row in rows.values())  # the latent's three raters, repeats not counted twice
    assert Consensus.objects.of_round(round_.pk).get().latent_id == latent.pk
    assert RaterReliability.objects.of_sae(sae.pk).get().weight == 0.7
    assert RaterReliability.objects.of_round(round_.pk).get().weight == 0.5
    try:  # and back: the keys become the strings again
        old = _migrate(BEFORE)
        scopes = set(old.get_model("annotation", "Consensus").objects.values_list("scope", flat=True))
        assert scopes == {f"round:{round_.pk}", f"sae:{sae.pk}"}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
