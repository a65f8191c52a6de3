"""The write matrix: every write endpoint and HTML form × every role × own / other institution × each id-bearing
field, each request in a savepoint that is rolled back so that every case starts from the same world.

A leak is any of: a write that carries one of own's private ids accepted (2xx, or a form's 302) for a
non-admin of `other`; such a write that changes any row; a foreign id answered differently from an absent
one (status, and for JSON the body); someone else's label in a response the blind rule forbids; a server
error.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from accounts.models import Role
from annotation.models import Adjudication, Comment, Label, LabelRevision, Round, RubricVersion
from features.models import SAE, ActivationSet, Corpus, LatentExample, Snippet
from inference.models import Job

from .access_world import (
    ROLES,
    WHERE,
    api_client,
    body_text,
    build_world,
    label_leaks,
    label_snapshot,
    record,
    row_counts,
    same_answer,
    send,
)
from .matrix_cases import WRITE_CASES, ids, personal_stranger, variants

pytestmark = pytest.mark.django_db
WATCHED = [
    Job,
    Round,
    Label,
    LabelRevision,
    Comment,
    Adjudication,
    Corpus,
    Snippet,
    ActivationSet,
    SAE,
    LatentExample,
    RubricVersion,
]


def _state():
    from accounts.models import ApiToken

    return (
        row_counts(WATCHED),
        label_snapshot(),
        sorted(ApiToken.objects.values_list("pk", "revoked_at")),
        sorted(Round.objects.values_list("pk", "status")),
        sorted(Job.objects.values_list("pk", "status")),
    )


def _accepted(case, response) -> bool:
    """The API accepts with 2xx; a page's form with a redirect (it re-renders with errors as 200)."""
    if case.template.startswith("/api/"):
        return 200 <= response.status_code < 300
    return response.status_code == 302


@pytest.mark.slow
def test_write_matrix_leaks_nothing(postgres, no_throttles):
    world = build_world()
    before = _state()
    requests, leaks, accepted_own = 0, [], set()
    cache: dict = {}
    for role in ROLES:
        for where in WHERE:
            user = world.actor(role, where)
            client = api_client(user)
            client.raise_request_exception = False
            outsider = where == "other" and role != Role.ADMIN
            values = ids(world, user)
            for case in WRITE_CASES:
                answers = {}
                for variant, filled in variants(case, values):
                    with transaction.atomic():
                        response = send(client, case, filled)
                        changed = _state() != before
                        transaction.set_rollback(True)
                    requests += 1
                    answers[variant] = (response, filled)
                    label = (
                        f"{role}/{where} POST {case.template} {sorted(case.private)} [{variant}] → "
                        f"{response.status_code}"
                    )
                    if response.status_code >= 500:
                        leaks.append(f"{label}: server error")
                    if marks := label_leaks(user, body_text(response), cache):
                        leaks.append(f"{label}: shows labels {marks[:3]}")
                    stranger = outsider or personal_stranger(world, case, user)
                    if stranger and case.private and variant == "foreign":
                        if _accepted(case, response):
                            leaks.append(f"{label}: accepted another institution's id")
                        if changed:
                            leaks.append(f"{label}: changed rows")
                    if where == "own" and variant == "foreign" and _accepted(case, response):
                        accepted_own.add((role, case.name))
                if outsider or personal_stranger(world, case, user):
                    foreign, foreign_values = answers["foreign"]
                    for variant, (absent, absent_values) in answers.items():
                        if variant == "foreign":
                            continue
                        key = variant.split(":", 1)[1]
                        if not same_answer(foreign, absent, foreign_values[key], absent_values[key]):
                            leaks.append(
                                f"{role}/{where} POST {case.template}: own's {key} answers "
                                f"{foreign.status_code} {body_text(foreign)[:120]!r}, an absent one "
                                f"{absent.status_code} {body_text(absent)[:120]!r}"
                            )
    assert _state() == before
    record(
        "write",
        {
            "requests": requests,
            "leaks": len(leaks),
            "cases": len(WRITE_CASES),
            "actors": len(ROLES) * len(WHERE),
            "accepted_for_own_people": len(accepted_own),
        },
    )
    assert not leaks, "\n".join(leaks[:40])
    # The same requests do go through for the people whose data it is: the refusals above are the policy's.
    for expected in [
        (Role.RESEARCHER, "job-train-sae"),
        (Role.RESEARCHER, "job-mine-latents"),
        (Role.RESEARCHER, "job-cache-activations"),
        (Role.RESEARCHER, "job-import-corpus"),
        (Role.RESEARCHER, "job-cancel"),
        (Role.RESEARCHER, "job-sweep"),
        (Role.RESEARCHER, "job-launch"),
        (Role.RESEARCHER, "job-cancel-page"),
        (Role.COORDINATOR, "round-close"),
        (Role.COORDINATOR, "round-create-api"),
        (Role.COORDINATOR, "round-create"),
        (Role.PHYSICIAN, "label-submit"),
        (Role.PHYSICIAN, "item"),
        (Role.PHYSICIAN, "round-comment-create"),
        (Role.SENIOR, "adjudication-create"),
        (Role.SENIOR, "adjudication-decide"),
    ]:
        assert expected in accepted_own, f"{expected} refused for own's people too"
