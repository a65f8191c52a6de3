"""export_labels (--round ID | --sae ID) [--institution CODE] --format {csv,jsonl,parquet} --out FILE."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Institution
from annotation.exports import FORMATS, ExportScope, export_write
from annotation.models import Round
from features.models import SAE

BAD_INPUT = 2


class Command(BaseCommand):
    help = (
        "Export the labels of closed rounds in long format (pseudonymised) and, beside it, one row per "
        "latent with its soft label, consensus, entropy, status and any adjudication."
    )

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--round", type=int, help="id of one round")
        scope.add_argument("--sae", type=int, help="id of one SAE: every closed round on it")
        parser.add_argument("--institution", help="only raters of this institution (its code)")
        parser.add_argument(
            "--include-simulated",
            action="store_true",
            help="also export rounds labelled by simulated raters (the demo's); left out by default",
        )
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, type=Path, help="the long-format labels file")
        parser.add_argument(
            "--latents-out",
            type=Path,
            help="the per-latent file (default: FILE's name with .latents before the suffix)",
        )

    def handle(self, *args, **options):
        fmt, out = options["format"], options["out"]
        if options["round"] is not None and not Round.objects.filter(pk=options["round"]).exists():
            raise CommandError(f"no round with id {options['round']}", returncode=BAD_INPUT)
        if options["sae"] is not None and not SAE.objects.filter(pk=options["sae"]).exists():
            raise CommandError(f"no SAE with id {options['sae']}", returncode=BAD_INPUT)
        institution = None
        if options["institution"]:
            institution = Institution.objects.filter(code=options["institution"]).first()
            if institution is None:
                raise CommandError(f"no institution with code '{options['institution']}'", returncode=BAD_INPUT)
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent}: no such folder", returncode=BAD_INPUT)
        latents_out = options["latents_out"] or out.with_name(f"{out.stem}.latents{out.suffix or '.' + fmt}")
        if (
            options["round"] is not None
            and not options["include_simulated"]
            and Round.objects.filter(pk=options["round"], simulated=True).exists()
        ):
            raise CommandError(
                f"round {options['round']} was labelled by simulated raters; pass --include-simulated to export it",
                returncode=BAD_INPUT,
            )
        scope = ExportScope(
            round_id=options["round"],
            sae_id=options["sae"],
            institution=institution,
            include_simulated=options["include_simulated"],
        )
        n_labels = export_write(kind="labels", fmt=fmt, user=None, scope=scope, path=out)
        n_latents = export_write(kind="latents", fmt=fmt, user=None, scope=scope, path=latents_out)
        self.stdout.write(f"wrote {n_labels} labels to {out} and {n_latents} latents to {latents_out}")
