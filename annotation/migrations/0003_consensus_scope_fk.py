"""Consensus and rater reliability point at their scope (a round or an SAE) by foreign key instead of a
"round:12" / "sae:3" string; consensus counts distinct raters; rounds carry their routing thresholds,
their minimum of hidden repeats and whether simulated raters labelled them."""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _parse(scope: str) -> tuple[str, int] | None:
    kind, _, key = scope.partition(":")
    return (kind, int(key)) if kind in ("round", "sae") and key.isdigit() else None


def scope_strings_to_keys(apps, schema_editor):
    Consensus = apps.get_model("annotation", "Consensus")
    RaterReliability = apps.get_model("annotation", "RaterReliability")
    Round = apps.get_model("annotation", "Round")
    SAE = apps.get_model("features", "SAE")
    Label = apps.get_model("annotation", "Label")
    rounds = set(Round.objects.values_list("pk", flat=True))
    saes = set(SAE.objects.values_list("pk", flat=True))
    for model in (Consensus, RaterReliability):
        for row in model.objects.all().only("pk", "scope"):
            parsed = _parse(row.scope)
            if parsed is None or parsed[1] not in (rounds if parsed[0] == "round" else saes):
                row.delete()  # a scope that names nothing: recomputed on the next close
                continue
            model.objects.filter(pk=row.pk).update(**{f"{parsed[0]}_id": parsed[1]})
    for row in Consensus.objects.all().only("pk", "latent_id", "round_id", "sae_id"):
        labels = Label.objects.filter(assignment__latent_id=row.latent_id)
        if row.round_id is not None:
            labels = labels.filter(assignment__round_id=row.round_id)
        else:
            labels = labels.filter(assignment__round__status__in=("closed", "revealed")).exclude(
                assignment__round__kind="detection")
        n_raters = labels.values("assignment__rater_id").distinct().count()
        Consensus.objects.filter(pk=row.pk).update(n_raters=n_raters)
    _constraints_now(schema_editor)


def _constraints_now(schema_editor):
    """Check the deferred foreign keys written above now: PostgreSQL refuses the ALTER TABLEs that follow
    in this migration's transaction while their trigger events are pending."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def keys_to_scope_strings(apps, schema_editor):
    for name in ("Consensus", "RaterReliability"):
        model = apps.get_model("annotation", name)
        for row in model.objects.all().only("pk", "round_id", "sae_id"):
            scope = f"round:{row.round_id}" if row.round_id is not None else f"sae:{row.sae_id}"
            model.objects.filter(pk=row.pk).update(scope=scope)
    _constraints_now(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_audit_append_only'),
        ('annotation', '0002_round_workflow_fields'),
        ('features', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # A default on the old column first, so that undoing its removal can fill existing rows.
        migrations.AlterField(
            model_name='consensus',
            name='scope',
            field=models.CharField(default='', help_text='e.g. round:12 or sae:3', max_length=60),
        ),
        migrations.AlterField(
            model_name='raterreliability',
            name='scope',
            field=models.CharField(default='', max_length=60),
        ),
        migrations.RemoveConstraint(
            model_name='consensus',
            name='consensus_unique',
        ),
        migrations.RemoveConstraint(
            model_name='raterreliability',
            name='raterreliability_unique',
        ),
        migrations.RemoveIndex(
            model_name='consensus',
            name='annotation__scope_cff368_idx',
        ),
        migrations.AddField(
            model_name='consensus',
            name='n_raters',
            field=models.PositiveIntegerField(default=0, help_text='Distinct raters who labelled the latent'),
        ),
        migrations.AddField(
            model_name='consensus',
            name='round',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='annotation.round'),
        ),
        migrations.AddField(
            model_name='consensus',
            name='sae',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='features.sae'),
        ),
        migrations.AddField(
            model_name='raterreliability',
            name='round',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='annotation.round'),
        ),
        migrations.AddField(
            model_name='raterreliability',
            name='sae',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='features.sae'),
        ),
        migrations.AddField(
            model_name='raterreliability',
            name='test_retest_high',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='raterreliability',
            name='test_retest_low',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='raterreliability',
            name='test_retest_n_pairs',
            field=models.PositiveIntegerField(default=0, help_text='Repeat pairs the estimate rests on'),
        ),
        migrations.AddField(
            model_name='round',
            name='min_repeats',
            field=models.PositiveSmallIntegerField(default=3, help_text='Hidden repeats every rater gets at least, whatever the repeat fraction (test–retest)'),
        ),
        migrations.AddField(
            model_name='round',
            name='routing_entropy_ceiling',
            field=models.FloatField(default=0.5, help_text='τ: a normalised posterior entropy above this is ambiguous', validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)]),
        ),
        migrations.AddField(
            model_name='round',
            name='routing_min_rounds',
            field=models.PositiveSmallIntegerField(default=2, help_text='R: rounds with labels before a senior decides', validators=[django.core.validators.MinValueValidator(1)]),
        ),
        migrations.AddField(
            model_name='round',
            name='routing_top_posterior_floor',
            field=models.FloatField(default=0.6, help_text='A top posterior below this is ambiguous', validators=[django.core.validators.MinValueValidator(0.0), django.core.validators.MaxValueValidator(1.0)]),
        ),
        migrations.AddField(
            model_name='round',
            name='simulated',
            field=models.BooleanField(db_index=True, default=False, help_text='Labelled by simulated raters (the demo): left out of every export unless asked for'),
        ),
        migrations.AlterField(
            model_name='consensus',
            name='n_labels',
            field=models.PositiveIntegerField(help_text='Judgments, hidden repeats included'),
        ),
        migrations.AlterField(
            model_name='raterreliability',
            name='test_retest',
            field=models.FloatField(blank=True, help_text='Self-agreement kappa, shrunk toward the pool', null=True),
        ),
        migrations.RunPython(scope_strings_to_keys, keys_to_scope_strings),
        migrations.RemoveField(
            model_name='consensus',
            name='scope',
        ),
        migrations.RemoveField(
            model_name='raterreliability',
            name='scope',
        ),
        migrations.AddIndex(
            model_name='consensus',
            index=models.Index(fields=['sae', 'method'], name='annotation__sae_id_90a05d_idx'),
        ),
        migrations.AddIndex(
            model_name='consensus',
            index=models.Index(fields=['round', 'method'], name='annotation__round_i_3e2db0_idx'),
        ),
        migrations.AddConstraint(
            model_name='consensus',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('round__isnull', True), ('sae__isnull', False)), models.Q(('round__isnull', False), ('sae__isnull', True)), _connector='OR'), name='consensus_exactly_one_scope'),
        ),
        migrations.AddConstraint(
            model_name='consensus',
            constraint=models.UniqueConstraint(condition=models.Q(('sae__isnull', False)), fields=('latent', 'sae', 'method'), name='consensus_unique_sae'),
        ),
        migrations.AddConstraint(
            model_name='consensus',
            constraint=models.UniqueConstraint(condition=models.Q(('round__isnull', False)), fields=('latent', 'round', 'method'), name='consensus_unique_round'),
        ),
        migrations.AddConstraint(
            model_name='raterreliability',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('round__isnull', True), ('sae__isnull', False)), models.Q(('round__isnull', False), ('sae__isnull', True)), _connector='OR'), name='raterreliability_exactly_one_scope'),
        ),
        migrations.AddConstraint(
            model_name='raterreliability',
            constraint=models.UniqueConstraint(condition=models.Q(('sae__isnull', False)), fields=('rater', 'sae'), name='raterreliability_unique_sae'),
        ),
        migrations.AddConstraint(
            model_name='raterreliability',
            constraint=models.UniqueConstraint(condition=models.Q(('round__isnull', False)), fields=('rater', 'round'), name='raterreliability_unique_round'),
        ),
        migrations.AddConstraint(
            model_name='round',
            constraint=models.CheckConstraint(condition=models.Q(('routing_min_rounds__gte', 1)), name='round_routing_min_rounds_positive'),
        ),
        migrations.AddConstraint(
            model_name='round',
            constraint=models.CheckConstraint(condition=models.Q(('routing_entropy_ceiling__gte', 0), ('routing_entropy_ceiling__lte', 1), ('routing_top_posterior_floor__gte', 0), ('routing_top_posterior_floor__lte', 1)), name='round_routing_thresholds_range'),
        ),
    ]
