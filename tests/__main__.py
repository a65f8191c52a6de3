"""`python -m tests [pytest args]`: choose the real services, then run pytest.

PostgreSQL and Redis are used whenever they answer (DATABASE_URL / CELERY_BROKER_URL, or the local
defaults below). With CI=true they are required: an unreachable server fails the run instead of
letting the suite fall back to SQLite and skip the worker tests.
"""

from __future__ import annotations

import os
import sys

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/concord"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"


def _postgres_answers(url: str) -> str | None:
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(url)
    try:
        psycopg.connect(
            host=cfg["HOST"],
            port=cfg["PORT"] or 5432,
            user=cfg["USER"],
            password=cfg["PASSWORD"],
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as error:
        return str(error).strip()
    return None


def _redis_answers(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        return str(error)
    return None


def main() -> int:
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    broker_url = os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER_URL)
    problems = []
    if database_url.startswith("postgres"):
        if (error := _postgres_answers(database_url)) is None:
            os.environ["DATABASE_URL"] = database_url
        else:
            problems.append(f"PostgreSQL at {database_url} did not answer: {error}")
    if broker_url.startswith("redis"):
        if (error := _redis_answers(broker_url)) is None:
            os.environ["CELERY_BROKER_URL"] = broker_url
        else:
            problems.append(f"Redis at {broker_url} did not answer: {error}")
    for problem in problems:
        print(f"tests: {problem}", file=sys.stderr)
    if problems and ci:
        print("tests: CI=true needs PostgreSQL and Redis; failing instead of skipping.", file=sys.stderr)
        return 3
    os.environ.setdefault("CONCORD_REQUIRE_SERVICES", "1" if ci else "0")

    import pytest

    return pytest.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
