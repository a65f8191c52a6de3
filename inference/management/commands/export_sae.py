"""export_sae ID DIR: write an SAE as a SAELens-format directory."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from features.models import SAE
from inference.services import sae_export


class Command(BaseCommand):
    help = "Export an SAE as cfg.json + sae_weights.safetensors."

    def add_arguments(self, parser):
        parser.add_argument("sae_id", type=int)
        parser.add_argument("directory", type=Path)

    def handle(self, *args, sae_id, directory, **options):
        sae = SAE.objects.filter(pk=sae_id).first()
        if sae is None:
            raise CommandError(f"no SAE {sae_id}")
        try:
            sae_export(sae=sae, directory=directory)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"wrote {directory}"))
