"""import_sae DIR: register a SAELens-format SAE directory."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from features.models import ActivationSet


class Command(BaseCommand):
    help = "Import a SAELens-format directory (cfg.json + sae_weights.safetensors)."

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--name")
        parser.add_argument("--model", help="host model (name, HF id or path) if cfg.json's metadata lacks it")
        parser.add_argument("--hook", help="hook point if cfg.json's metadata lacks it")
        parser.add_argument("--activation-set", type=int, help="the activations this SAE reads, for mining")

    def handle(self, *args, directory, name, model, hook, activation_set, **options):
        from inference.engine.formats import SAEFormatError
        from inference.services import sae_import

        activation_set_row = None
        if activation_set is not None:
            activation_set_row = ActivationSet.objects.filter(pk=activation_set).first()
            if activation_set_row is None:
                raise CommandError(f"no activation set {activation_set}")
        try:
            sae = sae_import(
                directory=directory, name=name, host_model=model, hook_name=hook, activation_set=activation_set_row
            )
        except (SAEFormatError, ValueError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"SAE {sae.pk} '{sae.name}': {sae.architecture}, d_sae={sae.d_sae}"))
