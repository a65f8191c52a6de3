"""steer: baseline and steered continuations of a prompt through an SAE on a causal host (research only)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from features.models import SAE


class Command(BaseCommand):
    help = (
        "Generate a prompt's continuation with and without clamping or scaling a latent (or every latent "
        "labelled with a concept). Research tool, not for patient care."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sae", type=int, required=True)
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--latent", type=int, help="latent index")
        target.add_argument(
            "--concept",
            help="concept code: every latent whose consensus label it is, weighted by the label's posterior",
        )
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--clamp", type=float, help="set the latent(s) to this activation")
        action.add_argument("--scale", type=float, help="multiply the latent(s) by this factor")
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--max-new-tokens", type=int, default=24)
        parser.add_argument("--seed", type=int, help="sample with this seed (default: greedy)")
        parser.add_argument("--json", action="store_true", help="print the whole result as JSON")

    def handle(self, *args, **options):
        from config.steering import RESEARCH_ONLY, SteeringError, SteeringRequest, steering_run

        sae = SAE.objects.select_related("hook_point__host_model").filter(pk=options["sae"]).first()
        if sae is None:
            raise CommandError(f"no SAE {options['sae']}")
        try:
            result = steering_run(SteeringRequest.from_fields(sae=sae, fields=options), by=None)
        except SteeringError as error:
            raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
            return
        self.stderr.write(RESEARCH_ONLY)
        self.stdout.write(f"baseline: {result['prompt']}{result['baseline']['text']}")
        self.stdout.write(f"steered:  {result['prompt']}{result['steered']['text']}")
        self.stdout.write("KL per position: " + " ".join(f"{value:.3f}" for value in result["kl"]))
