"""manage.py check_alerts: evaluate the operations alerts once (dicomnet/alerts.py), as the
every-minute schedule does, and print what is firing."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from dicomnet.alerts import evaluate
from dicomnet.models import OpsAlert


class Command(BaseCommand):
    help = "Evaluate the operations alerts once and list those firing."

    def handle(self, *args, **options) -> None:
        counts = evaluate()
        self.stdout.write(
            f"{counts['firing']} firing ({counts['opened']} new, {counts['resolved']} resolved)"
        )
        for alert in OpsAlert.objects.filter(resolved_at=None).order_by("first_seen"):
            where = f"practice {alert.practice_id}" if alert.practice_id else "all practices"
            self.stdout.write(
                f"  {alert.rule} ({where}) since {alert.first_seen:%Y-%m-%d %H:%M}: {alert.message}"
            )
