"""manage.py verify_audit: walks the audit trail's hash chain and names every row changed,
inserted or deleted behind the app's back (patients/audit.py). Exit 1 if any."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from patients.audit import verify
from patients.models import AuditEvent


class Command(BaseCommand):
    help = "Check the audit trail's hash chain; name each changed, inserted or deleted row."

    def handle(self, *args, **options) -> None:
        problems = list(verify())
        for problem in problems:
            self.stderr.write(problem.message)
        count = AuditEvent.objects.count()
        if problems:
            raise CommandError(
                f"the audit trail is broken: {len(problems)} problem(s) in {count} events"
            )
        self.stdout.write(f"audit trail intact: {count} events, the chain verified")
