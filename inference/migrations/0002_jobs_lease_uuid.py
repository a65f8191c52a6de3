# Jobs: leases, UUIDs, accounting fields, sweeps.

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


def _give_each_job_a_uuid(apps, schema_editor):
    Job = apps.get_model("inference", "Job")
    for job in Job.objects.filter(uuid__isnull=True).only("pk"):
        Job.objects.filter(pk=job.pk).update(uuid=uuid.uuid4())


class Migration(migrations.Migration):

    dependencies = [
        ('features', '0001_initial'),
        ('inference', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='job',
            name='cost',
            field=models.FloatField(default=0.0),
        ),
        migrations.AddField(
            model_name='job',
            name='device_seconds',
            field=models.FloatField(default=0.0),
        ),
        migrations.AddField(
            model_name='job',
            name='energy_method',
            field=models.CharField(blank=True, help_text='nvml, rapl or estimated', max_length=12),
        ),
        migrations.AddField(
            model_name='job',
            name='heartbeat_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='sent_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        # Existing rows get one UUID each (a callable default would give them all the same one), then
        # the column becomes unique.
        migrations.AddField(
            model_name='job',
            name='uuid',
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(_give_each_job_a_uuid, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='job',
            name='uuid',
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AddField(
            model_name='job',
            name='worker',
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.CreateModel(
            name='Sweep',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('uuid', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('name', models.CharField(max_length=200)),
                ('parameters', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('activation_set', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='sweeps', to='features.activationset')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='sweeps', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddField(
            model_name='job',
            name='sweep',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='jobs', to='inference.sweep'),
        ),
    ]
