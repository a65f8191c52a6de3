"""Personal API tokens (hashed) and the audit log's hash chain, computed for the rows already there."""
import datetime
import hashlib
import json

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models



def _hash(previous_hash, row):
    # The same canonical form as accounts.models.audit_event_hash, frozen here with this migration.
    actor_id, action, object_type, object_id, payload, ip, created_at = row
    content = json.dumps(
        [previous_hash, actor_id, action, object_type, object_id, payload, ip,
         created_at.astimezone(datetime.timezone.utc).isoformat()],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def chain_existing_rows(apps, schema_editor):
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    postgres = schema_editor.connection.vendor == "postgresql"
    if postgres:  # the append-only trigger refuses UPDATE; this one backfill is the exception
        schema_editor.execute("ALTER TABLE accounts_auditevent DISABLE TRIGGER accounts_auditevent_append_only;")
    previous = "0" * 64
    rows = AuditEvent.objects.order_by("id").values_list(
        "id", "actor_id", "action", "object_type", "object_id", "payload", "ip", "created_at")
    with schema_editor.connection.cursor() as cursor:
        for row in rows.iterator(chunk_size=2000):
            digest = _hash(previous, row[1:])
            cursor.execute("UPDATE accounts_auditevent SET previous_hash = %s, hash = %s WHERE id = %s",
                           [previous, digest, row[0]])
            previous = digest
    if postgres:
        schema_editor.execute("ALTER TABLE accounts_auditevent ENABLE TRIGGER accounts_auditevent_append_only;")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_audit_append_only'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='previous_hash',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='created_at',
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False),
        ),
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('key_hash', models.CharField(editable=False, max_length=64, unique=True)),
                ('hint', models.CharField(editable=False, max_length=12)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop),
    ]
