"""mine_latents --sae ID: top snippets, quantile samples, histograms and monosemanticity of every latent."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from features.models import SAE
from inference.models import Job
from inference.services import mine_latents_request

from ._jobs import run_job_from_command


class Command(BaseCommand):
    help = "Mine every latent of an SAE over the corpus of its activation set."

    def add_arguments(self, parser):
        parser.add_argument("--sae", type=int, required=True)
        parser.add_argument("--n-top", type=int, default=20)
        parser.add_argument("--enqueue", action="store_true", help="run on a worker instead of here")

    def handle(self, *args, sae, n_top, enqueue, **options):
        sae_row = SAE.objects.filter(pk=sae).first()
        if sae_row is None:
            raise CommandError(f"no SAE {sae}")
        try:
            job = mine_latents_request(sae=sae_row, n_top=n_top, enqueue=False)
        except ValueError as error:
            raise CommandError(str(error)) from None
        job = run_job_from_command(command=self, job=job, enqueue=enqueue)
        if job.status == Job.Status.SUCCEEDED:
            self.stdout.write(json.dumps(job.result, sort_keys=True))
