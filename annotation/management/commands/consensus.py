"""consensus --csv FILE --method {majority,weighted,dawid-skene,bayesian-ds} --json: soft consensus labels of a label CSV."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.stats.consensus import METHODS, consensus_fit
from annotation.stats.reliability import rater_weights
from annotation.stats.tables import read_long_csv

# Bad input exits 2, the status argparse uses for usage errors, so scripts can tell it from a crash.
BAD_INPUT = 2
RATIONALE_COLUMN = "rationale"
CONCEPT_NAME_COLUMN = "concept_name"


class Command(BaseCommand):
    help = (
        "Consensus per unit over a long-format CSV. weighted weighs raters, and dawid-skene and bayesian-ds "
        "start from a vote weighted, by test–retest (rows with is_repeat) and rationale learnability "
        "(rationale and concept_name columns) when present. n_labels counts judgments, n_raters distinct raters."
    )

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, type=Path, help="long-format CSV, e.g. an export_labels file")
        parser.add_argument("--unit-col", default="latent_id", help="column naming the unit (default latent_id)")
        parser.add_argument("--rater-col", default="rater", help="column naming the rater (default rater)")
        parser.add_argument("--value-col", default="concept_code", help="column with the label (default concept_code)")
        # Checked in handle() rather than by argparse choices so that a wrong method exits 2 however it is called.
        parser.add_argument("--method", required=True, metavar="{" + ",".join(METHODS) + "}")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        path, method = options["csv"], options["method"]
        if method not in METHODS:
            raise CommandError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}", returncode=BAD_INPUT)
        if not path.is_file():
            raise CommandError(f"{path}: no such file", returncode=BAD_INPUT)
        try:
            ratings = read_long_csv(
                path=path,
                unit_column=options["unit_col"],
                rater_column=options["rater_col"],
                value_column=options["value_col"],
                extra_columns=(RATIONALE_COLUMN, CONCEPT_NAME_COLUMN),
            )
        except ValueError as error:
            raise CommandError(str(error), returncode=BAD_INPUT) from error

        weights = None
        if method != "majority":
            weights = {
                rater: weight.weight
                for rater, weight in rater_weights(
                    ratings=ratings, rationale_column=RATIONALE_COLUMN, concept_terms=_concept_names(ratings)
                ).items()
            }
        result = consensus_fit(method=method, ratings=ratings, weights=weights)

        payload = result.to_json()
        if options["json"]:
            self.stdout.write(json.dumps(payload, allow_nan=False))
        else:
            for unit, summary in payload["units"].items():
                self.stdout.write(
                    f"{unit}\t{summary['label']}\tp={summary['posterior'][summary['label']]:.3f}\t"
                    f"entropy={summary['entropy']:.3f}\tn_labels={summary['n_labels']}\t"
                    f"n_raters={summary['n_raters']}"
                )


def _concept_names(ratings) -> dict[str, list[str]]:
    """Each concept code's name(s) as exported, the terms learnability masks in rationales."""
    names = ratings.extra.get(CONCEPT_NAME_COLUMN)
    if names is None:
        return {}
    terms: dict[str, list[str]] = {}
    for category, name in zip(ratings.category_index.tolist(), names, strict=False):
        if name.strip():
            terms.setdefault(str(ratings.categories[category]), [])
            if name.strip() not in terms[str(ratings.categories[category])]:
                terms[str(ratings.categories[category])].append(name.strip())
    return terms
