"""estimate_training: project an SAE training run's GPU-hours, energy, CO₂ and cost from a FLOP and memory model."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.engine.accounting import DEVICES, estimate_training


class Command(BaseCommand):
    help = "Project GPU-hours, kWh, kg CO2 and cost of training one SAE (inference/engine/accounting.py)."

    def add_arguments(self, parser):
        parser.add_argument("--tokens", type=float, required=True, help="training tokens, e.g. 2e10")
        parser.add_argument("--d-in", type=int, required=True, help="width of the hooked activations")
        parser.add_argument("--width", type=int, required=True, help="d_sae, the number of latents")
        parser.add_argument("--k", type=int, help="active latents per token (sparse decoder); omit for dense")
        parser.add_argument("--device", choices=sorted(DEVICES), default="a100")
        parser.add_argument("--batch-size", type=int, default=4096)
        parser.add_argument("--utilisation", type=float, default=0.4, help="fraction of peak FLOP/s reached")
        parser.add_argument(
            "--host-model-params",
            type=float,
            default=0.0,
            help="parameters of the host model when activations are produced on the fly",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        try:
            estimate = estimate_training(
                tokens=options["tokens"],
                d_in=options["d_in"],
                width=options["width"],
                k=options["k"],
                device=options["device"],
                batch_size=options["batch_size"],
                utilisation=options["utilisation"],
                host_model_params=options["host_model_params"],
                carbon_intensity_kg_per_kwh=settings.CARBON_INTENSITY_KG_PER_KWH,
                device_hour_price=settings.GPU_HOUR_PRICE,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        out = {
            "gpu_hours": estimate.gpu_hours,
            "kwh": estimate.energy_kwh,
            "co2_kg": estimate.co2_kg,
            "cost": estimate.cost,
            **estimate.to_dict(),
        }
        if options["json"]:
            self.stdout.write(json.dumps(out, sort_keys=True))
            return
        self.stdout.write(
            f"{estimate.device}: {estimate.gpu_hours:,.0f} GPU-hours ({estimate.min_gpus} GPU(s) "
            f"for the optimiser state), {estimate.energy_kwh:,.0f} kWh, {estimate.co2_kg:,.0f} kg CO2, "
            f"{estimate.cost:,.0f} at {settings.GPU_HOUR_PRICE}/GPU-hour (GPU_HOUR_PRICE)"
        )
