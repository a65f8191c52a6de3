# Issue 12: protected-attribute associations per latent.
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("features", "0003_merge_access_causal"),
    ]

    operations = [
        migrations.AddField(
            model_name="latent",
            name="protected_associations",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
