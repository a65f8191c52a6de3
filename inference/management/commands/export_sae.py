"""export_sae ID DIR: write an SAE as a SAELens-format directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from features.models import SAE
from inference.services import sae_export


class Command(BaseCommand):
    help = "Export an SAE as cfg.json + sae_weights.safetensors for SAELens and other tools."

    def add_arguments(self, parser):
        parser.add_argument("sae_id", type=int)
        parser.add_argument("directory", type=Path)
        parser.add_argument(
            "--fold",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="fold the input normalisation into W_enc, b_enc and b_dec so the weights read raw "
            "activations (default); --no-fold keeps Concord's normalised-space weights",
        )

    def handle(self, *args, sae_id, directory, fold, **options):
        sae = SAE.objects.filter(pk=sae_id).first()
        if sae is None:
            raise CommandError(f"no SAE {sae_id}")
        try:
            _, messages = sae_export(sae=sae, directory=directory, fold=fold)
        except ValueError as error:
            raise CommandError(str(error)) from None
        for message in messages:
            self.stderr.write(self.style.WARNING(f"warning: {message}"))
        self.stdout.write(self.style.SUCCESS(f"wrote {directory} ({'folded' if fold else 'not folded'})"))
