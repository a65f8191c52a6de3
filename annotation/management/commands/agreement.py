"""agreement --csv FILE --level LEVEL [--bootstrap N] [--seed S] --json: Krippendorff's alpha of a label CSV."""

from __future__ import annotations

import json
import math
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.stats.agreement import PACKAGE_LEVELS, krippendorff_alpha
from annotation.stats.tables import read_long_csv, reliability_matrix

# Bad input exits 2, the status argparse uses for usage errors, so scripts can tell it from a crash.
BAD_INPUT = 2


class Command(BaseCommand):
    help = "Krippendorff's alpha with a bootstrap CI over a long-format CSV (one judgment per row)."

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, type=Path, help="long-format CSV, e.g. an export_labels file")
        parser.add_argument("--unit-col", default="latent_id", help="column naming the unit (default latent_id)")
        parser.add_argument("--rater-col", default="rater", help="column naming the rater (default rater)")
        parser.add_argument("--value-col", default="concept_code", help="column with the value (default concept_code)")
        # Checked in handle() rather than by argparse choices so that a wrong level exits 2 however it is called.
        parser.add_argument("--level", required=True, metavar="{" + ",".join(PACKAGE_LEVELS) + "}")
        parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws over units; 0 for no CI")
        parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        path, level, bootstrap = options["csv"], options["level"], options["bootstrap"]
        if level not in PACKAGE_LEVELS:
            raise CommandError(
                f"unknown level {level!r}; choose one of {', '.join(PACKAGE_LEVELS)}", returncode=BAD_INPUT
            )
        if bootstrap < 0:
            raise CommandError("--bootstrap must be 0 (no CI) or a positive number of draws", returncode=BAD_INPUT)
        if not path.is_file():
            raise CommandError(f"{path}: no such file", returncode=BAD_INPUT)
        try:
            # Ordinal values are read as numbers too: their order is the one fact ordinal alpha needs.
            ratings = read_long_csv(
                path=path,
                unit_column=options["unit_col"],
                rater_column=options["rater_col"],
                value_column=options["value_col"],
                numeric=level != "nominal",
            )
            result = krippendorff_alpha(
                matrix=reliability_matrix(ratings=ratings), level=level, n_draws=bootstrap, seed=options["seed"]
            )
        except ValueError as error:
            raise CommandError(str(error), returncode=BAD_INPUT) from error

        ci = None if result.ci is None or any(math.isnan(bound) for bound in result.ci) else list(result.ci)
        payload = {
            "alpha": result.alpha if result.defined else None,
            "level": result.level,
            "ci": ci,
            "n_units": result.n_units,
            "n_raters": result.n_raters,
            "n_pairable": result.n_pairable,
        }
        if not result.defined:
            # Not bad input: the data cannot give an alpha, so it says why instead of printing a 0.0.
            payload["reason"] = f"undefined ({result.reason})"
        if options["json"]:
            self.stdout.write(json.dumps(payload, allow_nan=False))
        else:
            if not result.defined:
                self.stdout.write(f"{level} alpha undefined ({result.reason}); {result.n_units} pairable units")
                return
            interval = "no CI" if ci is None else f"{result.confidence:.0%} CI [{ci[0]:.3f}, {ci[1]:.3f}]"
            self.stdout.write(
                f"{level} alpha = {result.alpha:.4f} ({interval}); {result.n_units} units, "
                f"{result.n_raters} raters, {result.n_pairable} pairable values"
            )
