"""The audit log is hash-chained; verify_audit names the first tampered row; exports and job launches
are audited."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts.audit import audit_chain_verify, audit_record
from accounts.models import GENESIS_HASH, AuditEvent, Role
from tests import factories
from tests.annotation.conftest import api_world, client_for  # noqa: F401 - fixture


def _events(n: int, actor=None):
    return [audit_record(actor=actor, action="test.event", payload={"n": i, "text": "é ü", "x": 1.5}) for i in range(n)]


def _tamper(sql: str, params) -> None:
    """What an attacker with database access would do: switch off the append-only trigger and edit."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # flush deferred FK checks so ALTER TABLE may run
        cursor.execute("ALTER TABLE accounts_auditevent DISABLE TRIGGER accounts_auditevent_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE accounts_auditevent ENABLE TRIGGER accounts_auditevent_append_only")


def _verify_output() -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_each_row_holds_the_hash_of_the_previous_one(postgres):
    events = _events(5, actor=factories.user(role=Role.RESEARCHER))
    assert events[0].previous_hash == (
        AuditEvent.objects.filter(id__lt=events[0].pk).order_by("-id").values_list("hash", flat=True).first()
        or GENESIS_HASH
    )
    for before, after in zip(events, events[1:], strict=False):
        assert after.previous_hash == before.hash and len(after.hash) == 64
    assert "audit log intact" in _verify_output()


@pytest.mark.django_db
def test_verify_audit_names_the_first_row_whose_content_was_changed(postgres):
    events = _events(6)
    _tamper("UPDATE accounts_auditevent SET payload = %s WHERE id = %s", ['{"n": 99}', events[3].pk])
    _tamper("UPDATE accounts_auditevent SET action = 'x' WHERE id = %s", [events[4].pk])
    with pytest.raises(CommandError, match=rf"first bad row is event {events[3].pk} \(its content does not match"):
        _verify_output()


@pytest.mark.django_db
def test_verify_audit_notices_a_row_recomputed_after_an_edit(postgres):
    """Re-hashing the edited row itself still breaks the link to the next one."""
    events = _events(4)
    events[1].payload = {"n": 42}
    forged = events[1].compute_hash()
    _tamper("UPDATE accounts_auditevent SET payload = %s, hash = %s WHERE id = %s", ['{"n": 42}', forged, events[1].pk])
    result = audit_chain_verify()
    assert result.broken_at == events[2].pk and "link" in result.reason


@pytest.mark.django_db
def test_verify_audit_notices_a_deleted_row(postgres):
    events = _events(4)
    _tamper("DELETE FROM accounts_auditevent WHERE id = %s", [events[2].pk])
    with pytest.raises(CommandError, match=rf"first bad row is event {events[3].pk} \(its link"):
        _verify_output()


@pytest.mark.django_db
def test_verify_audit_notices_rows_removed_from_the_end_given_the_kept_head(postgres):
    """Deleting the last rows leaves a shorter chain that verifies; the head hash kept elsewhere does not."""
    from io import StringIO

    events = _events(5)
    out = StringIO()
    call_command("verify_audit", stdout=out)
    head = events[-1].hash
    assert f"head hash {head}" in out.getvalue()
    _events(2)  # the log grows: the kept head is still in the chain
    out = StringIO()
    call_command("verify_audit", "--expect-head", head, stdout=out)
    assert "2 rows appended since" in out.getvalue()
    _tamper("DELETE FROM accounts_auditevent WHERE id >= %s", [events[3].pk])
    assert "audit log intact" in _verify_output()  # without the kept head, truncation goes unseen
    with pytest.raises(CommandError, match=rf"no row has the expected head hash {head}"):
        call_command("verify_audit", "--expect-head", head, stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain(postgres):
    def write(worker: int) -> None:
        try:
            for i in range(15):
                audit_record(actor=None, action="test.concurrent", payload={"worker": worker, "i": i})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert AuditEvent.objects.filter(action="test.concurrent").count() == 120
    result = audit_chain_verify()
    assert result.broken_at is None, result
    hashes = list(AuditEvent.objects.values_list("previous_hash", flat=True))
    assert len(hashes) == len(set(hashes))  # no two rows claim the same predecessor: no fork


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/exports/labels/", "/api/v1/exports/latents/"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_every_api_export_is_audited(api_world, url, fmt):
    researcher = factories.user(role=Role.RESEARCHER, institution_obj=api_world["own"])
    response = client_for(researcher).get(url, {"round": api_world["revealed"].pk, "format": fmt})
    assert response.status_code == 200
    b"".join(response.streaming_content)
    event = AuditEvent.objects.get(action__startswith="export.")
    assert (event.actor, event.payload["format"], event.payload["round"]) == (researcher, fmt, api_world["revealed"].pk)


@pytest.mark.django_db
def test_the_export_page_and_the_command_are_audited(api_world, client, tmp_path):
    coordinator = api_world["coordinator"]
    client.force_login(coordinator)
    response = client.get("/export/", {"round": api_world["revealed"].pk, "kind": "labels", "format": "csv"})
    assert response.status_code == 200
    assert AuditEvent.objects.filter(action="export.labels", actor=coordinator).count() == 1
    call_command(
        "export_labels",
        "--round",
        str(api_world["revealed"].pk),
        "--format",
        "csv",
        "--out",
        str(tmp_path / "labels.csv"),
    )
    assert AuditEvent.objects.filter(action="export.labels", actor=None).count() == 1
    assert AuditEvent.objects.filter(action="export.latents", actor=None).count() == 1


@pytest.mark.django_db
def test_every_job_launch_is_audited(tmp_path):
    researcher = factories.user(role=Role.RESEARCHER)
    client = APIClient()
    client.force_authenticate(researcher)
    path = tmp_path / "notes.jsonl"
    path.write_text('{"external_id": "a", "text": "Pt with CHF."}\n')
    with path.open("rb") as handle:
        response = client.post("/api/v1/jobs/import-corpus/", {"file": handle, "name": "n"}, format="multipart")
    assert response.status_code == 202
    assert AuditEvent.objects.filter(
        action="job.create.import_corpus", actor=researcher, object_id=str(response.json()["id"])
    ).exists()
