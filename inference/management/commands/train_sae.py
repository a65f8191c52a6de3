"""train_sae: train one SAE and write a SAELens-format directory; the last line is the metrics as JSON."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from features.models import ActivationSet
from inference.models import Job
from inference.services import ARCHITECTURES, train_sae_request

from ._jobs import run_job_from_command


class Command(BaseCommand):
    help = "Train an SAE on an activation set or an [n_tokens, d_in] .npy file."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--activation-set", type=int)
        source.add_argument("--activations", help="FILE.npy of shape [n_tokens, d_in]")
        parser.add_argument("--arch", required=True, choices=ARCHITECTURES)
        parser.add_argument("--width", type=int, required=True, help="d_sae, the number of latents")
        parser.add_argument("--k", type=int, help="active latents per token (topk, batchtopk, matryoshka)")
        parser.add_argument("--l1", type=float, help="sparsity coefficient (relu: L1, jumprelu: L0)")
        parser.add_argument("--steps", type=int, default=2000)
        parser.add_argument("--batch-size", type=int, default=4096)
        parser.add_argument(
            "--lr",
            type=float,
            help="peak Adam learning rate (default: 2e-4 / sqrt(width / 2**14), scaled with the width)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: CONCORD_DEVICE)")
        parser.add_argument("--checkpoint-every", type=int, default=500)
        parser.add_argument("--name", help="name of the SAE row (with --activation-set)")
        parser.add_argument("--out", required=True, help="directory for cfg.json + sae_weights.safetensors")
        parser.add_argument("--enqueue", action="store_true", help="run on a worker instead of here")

    def handle(self, *args, **options):
        activation_set = None
        if options["activation_set"] is not None:
            activation_set = ActivationSet.objects.filter(pk=options["activation_set"]).first()
            if activation_set is None:
                raise CommandError(f"no activation set {options['activation_set']}")
        try:
            job = train_sae_request(
                activation_set=activation_set,
                activations_path=options["activations"],
                arch=options["arch"],
                width=options["width"],
                k=options["k"],
                l1=options["l1"],
                steps=options["steps"],
                batch_size=options["batch_size"],
                lr=options["lr"],
                seed=options["seed"],
                device=options["device"],
                out=options["out"],
                name=options["name"],
                checkpoint_every=options["checkpoint_every"],
                enqueue=False,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        job = run_job_from_command(command=self, job=job, enqueue=options["enqueue"])
        if job.status == Job.Status.SUCCEEDED:
            self.stdout.write(json.dumps(job.result["metrics"], sort_keys=True))
