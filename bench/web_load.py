"""Web load: 50 physicians labelling at once through gunicorn, then a 100,000-label export streamed.

    .venv/bin/python bench/web_load.py [--raters 50] [--latents 240] [--export-labels 100000]

Seeds its own PostgreSQL database (`concord_bench`, dropped and re-created; DATABASE_URL's server),
starts gunicorn on 127.0.0.1 as a subprocess, and drives it with one thread per simulated physician:
fetch the next item's page, post a label (with its CSRF token and an idempotency key), repeat until
the physician's queue is done. Prints p50/p95/p99 latency and throughput per request kind; then times a
streamed CSV export of every label over HTTP (time to first byte, total, rows, the serving worker's
peak RSS) and the `export_labels` command in each format (wall time, peak RSS). Loopback only; every
loop is bounded by the seeded queues.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("BENCH_DATABASE", "concord_bench")
# Two runs side by side (an A/B of two checkouts) each need their own database, port and folder.
VAR = Path(os.environ.get("BENCH_VAR_DIR", "/tmp/concord-bench-var"))
SERVER_URL = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
PORT = int(os.environ.get("BENCH_PORT", "8765"))
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
ENV = {
    **os.environ,
    "DATABASE_URL": f"{SERVER_URL}/{DATABASE}",
    "DEBUG": "0",
    "SECRET_KEY": "bench-" + "x" * 40,
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "0",
    "SECURE_HSTS_SECONDS": "0",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "CONCORD_VAR_DIR": str(VAR),
    "LOG_LEVEL": "WARNING",
}


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")


def _django():
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _session_cookie(user) -> str:
    """A logged-in session without a password round (PBKDF2 would dominate a login-heavy benchmark)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def _user(*, role: str, institution, username: str):
    """A user without a password: sessions are made directly, and PBKDF2 would only slow the seeding."""
    from django.contrib.auth import get_user_model

    from accounts.models import Profile

    user = get_user_model().objects.create(username=username)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    Profile.objects.create(user=user, institution=institution, role=role)
    return user


def _examples(latent, snippets, rng, *, n_top: int = 20, n_bins: int = 10, per_bin: int = 5):
    from features.models import LatentExample

    rows = []
    for kind, count in (("top", n_top), ("quantile", n_bins * per_bin)):
        for k in range(count):
            snippet = snippets[rng.randrange(len(snippets))]
            tokens = snippet.text.split()
            peak = rng.randrange(len(tokens))
            value = (8.0 - 0.2 * k) if kind == "top" else 0.3 * (k // per_bin + 1)
            activations = [round(max(0.0, value - abs(i - peak) * 1.5), 3) for i in range(len(tokens))]
            rank = k if kind == "top" else k // per_bin
            rows.append(
                LatentExample(
                    latent=latent,
                    snippet=snippet,
                    kind=kind,
                    rank=rank,
                    max_activation=value,
                    tokens=tokens,
                    activations=activations,
                )
            )
    return rows


def seed(*, n_raters: int, n_latents: int, n_export: int) -> dict:
    import random

    from django.core.management import call_command

    from accounts.models import Role
    from annotation.models import Assignment, Label, Round
    from features.models import Latent, LatentExample, Snippet
    from tests import factories
    from tests.annotation import worlds

    call_command("migrate", verbosity=0)
    # DEBUG=0 serves hashed static names from the manifest, as production does after collectstatic.
    call_command("collectstatic", interactive=False, verbosity=0)
    rng = random.Random(0)
    institutions = [factories.institution(f"site{i}") for i in range(5)]
    coordinator = _user(role=Role.COORDINATOR, institution=institutions[0], username="bench-coordinator")
    researcher = _user(role=Role.RESEARCHER, institution=institutions[0], username="bench-researcher")
    raters = [
        _user(role=Role.PHYSICIAN, institution=institutions[i % 5], username=f"bench-rater-{i}")
        for i in range(n_raters)
    ]
    version = worlds.rubric(by=coordinator)

    def clinical(i: int) -> str:
        return " ".join(rng.choice(worlds.WORDS) for _ in range(64))

    sae = worlds.sae_with_examples(n_latents=n_latents, n_top=1, n_snippets=400, snippet_text=clinical)
    LatentExample.objects.filter(latent__sae=sae).delete()
    snippets = list(Snippet.objects.filter(corpus=sae.activation_set.corpus))
    for latent in Latent.objects.filter(sae=sae):
        LatentExample.objects.bulk_create(_examples(latent, snippets, rng))
    load_round = worlds.make_round(
        by=coordinator,
        sae=sae,
        version=version,
        institutions=institutions,
        raters_list=raters,
        overlap=3,
        repeat_fraction=0.1,
        kind="production",
    )

    # The export: n_export labels on one closed round of its own SAE (every rater on every latent).
    n_export_latents = max(1, n_export // n_raters)
    export_sae = worlds.sae_with_examples(n_latents=n_export_latents, n_top=1, n_snippets=50)
    export_round = Round.objects.create(
        name="export",
        kind="production",
        sae=export_sae,
        rubric_version=version,
        coordinator=coordinator,
        overlap=n_raters,
        status=Round.Status.OPEN,
    )
    export_round.institutions.set(institutions)
    concepts = list(version.concepts.all())
    latent_ids = list(export_sae.latents.values_list("pk", flat=True))
    batch = 20_000
    pairs = [(latent_id, rater.pk) for latent_id in latent_ids for rater in raters][:n_export]
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        assignments = Assignment.objects.bulk_create(
            Assignment(round=export_round, latent_id=latent_id, rater_id=rater_id, position=start + i)
            for i, (latent_id, rater_id) in enumerate(chunk)
        )
        Label.objects.bulk_create(
            Label(
                assignment=a,
                concept=concepts[(a.latent_id + a.rater_id) % len(concepts)],
                confidence=3,
                rationale=f"Rationale number {a.pk}: the peak token names the finding, see snippets 1 and 4.",
            )
            for a in assignments
        )
    Round.objects.filter(pk=export_round.pk).update(status=Round.Status.CLOSED)
    return {
        "round": load_round.pk,
        "export_round": export_round.pk,
        "export_sae": export_sae.pk,
        "n_export": len(pairs),
        "raters": [(rater.pk, _session_cookie(rater)) for rater in raters],
        "researcher": _session_cookie(researcher),
        "queues": {
            rater.pk: list(
                Assignment.objects.filter(round=load_round, rater=rater)
                .order_by("position")
                .values_list("position", flat=True)
            )
            for rater in raters
        },
        "n_examples_per_latent": LatentExample.objects.filter(latent__sae=sae).count() // n_latents,
    }


def _start_gunicorn(*, workers: int, log: Path) -> subprocess.Popen:
    env = {**ENV, "GUNICORN_BIND": f"127.0.0.1:{PORT}", "GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": "2"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "--access-logfile",
            "/dev/null",
            "config.wsgi",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180  # workers boot slowly on a loaded 2-core machine
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            connection.request("GET", "/accounts/login/")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"gunicorn did not start; see {log}")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _physician(
    *, session: str, round_id: int, queue: list[int], timings: dict, errors: list, think: float, seed: int
) -> None:
    """One simulated physician. `think` seconds (±50%, seeded) of reading between page and submit, and a
    start spread over one reading time, stand for the person, not for synchronisation; 0 makes the run a
    closed-loop saturation test with everyone starting at once."""
    import random

    rng = random.Random(seed)
    if think:
        time.sleep(rng.uniform(0, think))  # physicians arrive spread over one reading time, not all at once
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    cookies = {"sessionid": session}

    def request(method: str, path: str, body: str | None = None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        nonlocal connection
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # gunicorn closes idle keep-alive connections while a physician reads: reconnect, as browsers do.
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            started = time.perf_counter()
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data, elapsed

    from urllib.parse import urlencode

    for position in queue:
        path = f"/rounds/{round_id}/items/{position}/"
        status, page, elapsed = request("GET", path)
        timings["page"].append(elapsed)
        if status != 200:
            errors.append(f"GET {path}: {status}")
            continue
        if think:
            time.sleep(think * rng.uniform(0.5, 1.5))
        token = TOKEN.search(page.decode())
        form = {
            "csrfmiddlewaretoken": token.group(1) if token else "",
            "concept_code": "HF",
            "confidence": "4",
            "free_text": "bench",
            "rationale": "The peak token names the finding in most snippets.",
            "time_spent_seconds": "30",
            "idempotency_key": uuid.uuid4().hex,
        }
        status, _, elapsed = request("POST", path, urlencode(form))
        timings["submit"].append(elapsed)
        if status != 302:
            errors.append(f"POST {path}: {status}")


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def _worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_test(world: dict, *, workers: int, think: float) -> None:
    log = VAR / "gunicorn.log"
    server = _start_gunicorn(workers=workers, log=log)
    try:
        timings = {"page": [], "submit": []}
        errors: list[str] = []
        threads = [
            threading.Thread(
                target=_physician,
                kwargs={
                    "session": session,
                    "round_id": world["round"],
                    "queue": world["queues"][rater_id],
                    "timings": timings,
                    "errors": errors,
                    "think": think,
                    "seed": i,
                },
            )
            for i, (rater_id, session) in enumerate(world["raters"])
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    finally:
        _stop(server)
    n = len(timings["page"]) + len(timings["submit"])
    print(
        f"\n## Labelling load: {len(threads)} concurrent physicians, gunicorn {workers} workers × 2 threads, "
        f"{world['n_examples_per_latent']} examples per latent page, think time {think:g} s"
    )
    print("| request | n | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|")
    for kind, label in (("page", "GET item page"), ("submit", "POST label → 302")):
        p50, p95, p99 = _percentiles(timings[kind])
        print(f"| {label} | {len(timings[kind])} | {p50:.0f} | {p95:.0f} | {p99:.0f} |")
    print(
        f"\nthroughput: {n / wall:.1f} requests/s ({len(timings['submit']) / wall:.1f} labels/s) over {wall:.1f} s; "
        f"errors: {len(errors)}{' — ' + errors[0] if errors else ''}"
    )


def _reset_labels(world: dict) -> None:
    """Delete the load round's labels so that every load run starts from empty queues."""
    from django.db import connections

    from annotation.models import Label, LabelRevision

    LabelRevision.objects.filter(label__assignment__round_id=world["round"]).delete()
    Label.objects.filter(assignment__round_id=world["round"]).delete()
    connections.close_all()


def export_test(world: dict) -> None:
    log = VAR / "gunicorn-export.log"
    server = _start_gunicorn(workers=1, log=log)
    try:
        workers = _worker_pids(server.pid)
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=600)
        connection.request("GET", "/api/v1/", headers={"Cookie": f"sessionid={world['researcher']}"})
        connection.getresponse().read()
        baseline = max(_peak_rss_mb(pid) for pid in workers)
        started = time.perf_counter()
        connection.request(
            "GET",
            f"/api/v1/exports/labels/?round={world['export_round']}&format=csv",
            headers={"Cookie": f"sessionid={world['researcher']}"},
        )
        response = connection.getresponse()
        first = response.read(1)
        first_byte = time.perf_counter() - started
        size, lines = len(first), first.count(b"\n")
        while chunk := response.read(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\n")
        total = time.perf_counter() - started
        peak = max(_peak_rss_mb(pid) for pid in workers)
    finally:
        _stop(server)
    print(f"\n## Export of {world['n_export']:,} labels")
    print("| path | rows | MB | first byte s | total s | peak RSS MB |\n|---|---|---|---|---|---|")
    print(
        f"| HTTP csv (StreamingHttpResponse) | {lines - 1:,} | {size / 1e6:.1f} | {first_byte:.2f} | {total:.1f} | "
        f"{peak:.0f} (worker; {baseline:.0f} before) |"
    )
    # One institution's fifth of the labels beside the whole: a flat peak RSS is the constant-memory claim.
    site0 = ["--institution", "site0"]
    runs = [("csv", site0), ("csv", []), ("jsonl", []), ("parquet", site0), ("parquet", [])]
    for fmt, extra in runs:
        out = VAR / f"export.{fmt}"
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _MEASURED_COMMAND,
                "--round",
                str(world["export_round"]),
                *extra,
                "--format",
                fmt,
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=ENV,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if result.returncode:
            print(f"| command {fmt} | failed: {result.stderr.strip()[-200:]} |")
            continue
        rows = int(re.search(r"wrote (\d+) labels", result.stdout).group(1))
        peak_mb = int(re.search(r"MAXRSS (\d+)", result.stdout).group(1)) / 1024
        size = out.stat().st_size + out.with_name(f"{out.stem}.latents{out.suffix}").stat().st_size
        print(
            f"| `export_labels --format {fmt}{' ' + ' '.join(extra) if extra else ''}` (labels + latents files) | "
            f"{rows:,} | {size / 1e6:.1f} | — | {wall:.1f} | {peak_mb:.0f} |"
        )


# The command in a child process that reports its own peak RSS: VmHWM (KiB) of its own address space,
# not ru_maxrss, which Linux carries across exec from the (large, seeded) parent.
_MEASURED_COMMAND = (
    "import re, sys, django; django.setup(); from django.core.management import call_command; "
    "call_command('export_labels', *sys.argv[1:]); "
    "print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--latents", type=int, default=240)
    parser.add_argument("--export-labels", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
    parser.add_argument(
        "--think",
        type=float,
        action="append",
        help="seconds a physician reads before submitting (repeatable; default: 0 and 3)",
    )
    options = parser.parse_args()
    started = time.perf_counter()
    VAR.mkdir(parents=True, exist_ok=True)
    _recreate_database()
    _django()
    world = seed(n_raters=options.raters, n_latents=options.latents, n_export=options.export_labels)
    print(
        f"seeded {DATABASE} in {time.perf_counter() - started:.0f} s "
        f"({options.raters} physicians, {options.latents} latents, {world['n_export']:,} export labels); "
        f"{os.cpu_count()} CPUs shared by server and load generator"
    )
    from django.db import connection, connections

    # Planner statistics, as autovacuum would have them on a server that has been running: right after a bulk
    # seed PostgreSQL still believes the tables are empty and joins the evidence query from the wrong end
    # (4.5 ms for 70 rows instead of 0.7 ms).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connections.close_all()
    for think in options.think or [0.0, 3.0]:
        _reset_labels(world)
        load_test(world, workers=options.workers, think=think)
    export_test(world)


if __name__ == "__main__":
    main()
