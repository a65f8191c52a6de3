"""drift_audit --sae ID --corpus NAME [--reference NAME] [--by USERNAME] --json: label-free drift of a corpus
against the SAE's training corpus (firing rates, active-latent counts, FVE, divergence).

Who may follow a command-run audit: with `--by USERNAME` the job (and any capture it registers) is that
user's, so they, their institution's researchers and admins see it on `/drift/<job>/` and `/jobs/<job>/`,
exactly as if they had launched it from the page; the user must be a job runner (researcher or admin) who
may see the SAE and both corpora. Without `--by` the job has no creator and only admins see it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.permissions import can_run_jobs, may_see_corpus, may_see_sae
from clinical.forms import THRESHOLD_LABELS
from clinical.selectors import drift_report
from clinical.services import drift_audit_start
from features.models import SAE, Corpus
from inference.drift import DRIFT_CONFIG_KEYS
from inference.models import Job
from inference.services import job_run


class Command(BaseCommand):
    help = "Audit a corpus for drift against the SAE's training corpus (or --reference), without labels."

    def add_arguments(self, parser):
        parser.add_argument("--sae", type=int, required=True)
        parser.add_argument("--corpus", required=True, help="name of the corpus to audit")
        parser.add_argument("--reference", help="name of the reference corpus (default: the SAE's training corpus)")
        for key in DRIFT_CONFIG_KEYS:
            parser.add_argument(
                f"--{key.replace('_', '-')}",
                type=float,
                dest=key,
                help=f"{THRESHOLD_LABELS[key]} (default: settings.DRIFT_THRESHOLDS, env DRIFT_{key.upper()})",
            )
        parser.add_argument(
            "--by",
            metavar="USERNAME",
            help="record the audit as this researcher's (default: nobody's, which only admins see)",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, sae, corpus, reference, json: bool, by: str | None = None, **options):
        sae_row = SAE.objects.select_related("activation_set__corpus").filter(pk=sae).first()
        if sae_row is None:
            raise CommandError(f"no SAE {sae}")
        user = None
        if by is not None:
            user = get_user_model().objects.filter(username=by, is_active=True).first()
            if user is None:
                raise CommandError(f"no active user {by!r}")
            if not can_run_jobs(user):
                raise CommandError(f"{by} is not a researcher or admin: only job runners own drift audits")
            if not may_see_sae(user, sae_row):
                raise CommandError(f"{by} may not see SAE {sae}")
        corpora = {}
        for role, name in (("corpus", corpus), ("reference", reference)):
            if name is not None:
                # Names are unique per institution: among namesakes, take the SAE's own institution's (or the
                # shared one); anything still ambiguous is refused rather than guessed.
                named = list(Corpus.objects.filter(name=name))
                if len(named) > 1 and sae_row.activation_set is not None:
                    home = sae_row.activation_set.corpus.institution_id
                    named = [row for row in named if row.institution_id in (home, None)]
                if not named:
                    raise CommandError(f"no corpus named {name!r}")
                if len(named) > 1:
                    raise CommandError(f"several corpora are named {name!r}; rename one or audit from the page")
                corpora[role] = named[0]
                if user is not None and not may_see_corpus(user, named[0]):
                    raise CommandError(f"{by} may not see corpus {name!r}")
        thresholds = {key: options[key] for key in DRIFT_CONFIG_KEYS if options.get(key) is not None}
        try:
            job = drift_audit_start(
                sae=sae_row,
                corpus=corpora["corpus"],
                reference=corpora.get("reference"),
                thresholds=thresholds,
                by=user,
                enqueue=False,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        job = job_run(job_id=job.pk)
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(f"job {job.pk} {job.status}: {job.message}")
        report = drift_report(job=job)
        if json:
            import json as json_module

            self.stdout.write(json_module.dumps(report))
            return
        verdict = "DRIFT" if report["drift"] else "no drift"
        self.stdout.write(
            f"{verdict}: divergence {report['divergence']:.4f}, FVE {report['fve_reference']:.3f} → "
            f"{report['fve_corpus']:.3f}, {len(report['flagged'])} latents flagged (job {job.pk})"
        )
