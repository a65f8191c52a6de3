# Issue 12: protected-attribute associations per latent. Depends on both 0002 migrations of main, so it
# also joins their two branches.
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("features", "0002_access_corpus_name_per_institution"),
        ("features", "0002_causal_logit_effects"),
    ]

    operations = [
        migrations.AddField(
            model_name="latent",
            name="protected_associations",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
