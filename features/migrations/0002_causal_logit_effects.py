from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("features", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="latent",
            name="logit_effects",
            field=models.JSONField(
                blank=True, default=dict,
                help_text="causal hosts: {'raised': [{'token', 'id', 'logit'}...], 'lowered': [...], 'method': str}, "
                          "the decoder direction through the unembedding; {} for encoders"),
        ),
    ]
