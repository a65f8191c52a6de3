"""protected_scan --sae ID [--threshold R]: flag latents associated with a protected attribute."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from clinical.services import protected_scan_run
from features.models import SAE


class Command(BaseCommand):
    help = "Score every latent's Pearson r with each protected tag of the training corpus and store the flags."

    def add_arguments(self, parser):
        parser.add_argument("--sae", type=int, required=True)
        parser.add_argument("--threshold", type=float, help="flag at Pearson r >= this (default 0.3)")

    def handle(self, *args, sae, threshold, **options):
        sae_row = (
            SAE.objects.select_related("activation_set__corpus", "activation_set__hook_point").filter(pk=sae).first()
        )
        if sae_row is None:
            raise CommandError(f"no SAE {sae}")
        try:
            result = protected_scan_run(sae=sae_row, threshold=threshold)
        except ValueError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(json.dumps(result, sort_keys=True))
