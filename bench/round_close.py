"""Round-close request latency (p50/p95): POST /api/v1/rounds/<id>/close/ on N labelled rounds.

Runs against a throw-away test database (test_<DATABASE_URL's name>) built with the test builders, and the
broker of CELERY_BROKER_URL (no worker needed: with the statistics job the request only queues it).
    python bench/round_close.py [--rounds 20] [--latents 12] [--raters 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--latents", type=int, default=12)
    parser.add_argument("--raters", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient

    from accounts.models import Role
    from tests import factories
    from tests.annotation import worlds

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        own = factories.institution("own")
        coordinator = factories.user(role=Role.COORDINATOR, institution_obj=own)
        raters = [factories.user(role=Role.PHYSICIAN, institution_obj=own) for _ in range(args.raters)]
        version = worlds.rubric(by=coordinator)
        client = APIClient()
        client.force_authenticate(coordinator)
        latencies = []
        for _ in range(args.rounds):
            sae = worlds.sae_with_examples(n_latents=args.latents, institution=own)
            round_ = worlds.make_round(
                by=coordinator, sae=sae, version=version, institutions=[own], raters_list=raters, overlap=args.raters
            )
            worlds.label_everything(round_, choose=lambda a: "HF" if a.latent.index % 3 else "AKI")
            started = time.perf_counter()
            response = client.post(f"/api/v1/rounds/{round_.pk}/close/")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.content
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        print(
            f"round close: n={len(latencies)} rounds of {args.latents} latents x {args.raters} raters; "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms"
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
