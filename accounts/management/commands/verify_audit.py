"""verify_audit [--expect-head HASH]: recompute the audit log's hash chain and name the first row that does
not match; with --expect-head, also check that a head hash kept elsewhere is still in the chain."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.audit import audit_chain_verify
from accounts.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Walk the audit log in order, recomputing each row's hash from its content and the previous "
        "row's hash; report the first row that was altered, deleted before or inserted out of order. "
        "Rows removed from the end leave a shorter chain that still verifies: keep the printed head hash "
        "elsewhere and pass it later as --expect-head to notice that."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect-head",
            metavar="HASH",
            help="a head hash printed earlier: fail unless a row of the verified chain still has it",
        )

    def handle(self, *args, **options):
        result = audit_chain_verify()
        if result.broken_at is not None:
            raise CommandError(
                f"audit log tampered: first bad row is event {result.broken_at} ({result.reason}); "
                f"{result.n_verified} rows before it verified",
                returncode=1,
            )
        expected = (options.get("expect_head") or "").strip().lower()
        if expected:
            kept = AuditEvent.objects.filter(hash=expected).values_list("pk", flat=True).first()
            if kept is None:
                raise CommandError(
                    f"audit log truncated or replaced: no row has the expected head hash {expected}; "
                    f"the chain now ends at {result.head_hash} after {result.n_verified} rows",
                    returncode=1,
                )
            since = AuditEvent.objects.filter(pk__gt=kept).count()
            self.stdout.write(f"expected head found at event {kept}; {since} rows appended since")
        self.stdout.write(f"audit log intact: {result.n_verified} rows verified; head hash {result.head_hash}")
