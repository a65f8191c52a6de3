"""verify_audit: recompute the audit log's hash chain and name the first row that does not match."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.audit import audit_chain_verify


class Command(BaseCommand):
    help = (
        "Walk the audit log in order, recomputing each row's hash from its content and the previous "
        "row's hash; report the first row that was altered, deleted before or inserted out of order."
    )

    def handle(self, *args, **options):
        result = audit_chain_verify()
        if result.broken_at is not None:
            raise CommandError(
                f"audit log tampered: first bad row is event {result.broken_at} ({result.reason}); "
                f"{result.n_verified} rows before it verified",
                returncode=1,
            )
        self.stdout.write(f"audit log intact: {result.n_verified} rows verified; head hash {result.head_hash}")
