"""Merge of two 0003 migrations made in parallel: clinical's protected attributes and consensus's scope keys."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0003_clinical_protected'),
        ('annotation', '0003_consensus_scope_fk'),
    ]

    operations = []
