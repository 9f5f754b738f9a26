"""manage.py export_audit --format atna|csv --output PATH [--practice ID] [--since DATE]
[--until DATE]: the audit trail as DICOM audit messages (one XML file per event, PS3.15
A.5.1, in the directory PATH) or as one CSV file PATH.
manage.py export_audit --format syslog --output udp://|tcp://|tls://host[:port]: the same
messages sent to a syslog collector (RFC 5424; patients/syslog.py), once, in order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from patients import syslog
from patients.atna import audit_message_xml, write_csv
from patients.models import AuditEvent


def _day(text: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {text!r}") from None
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class Command(BaseCommand):
    help = "Export the audit trail as DICOM audit messages (XML, one per event) or CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["atna", "csv", "syslog"], required=True)
        parser.add_argument(
            "--output",
            required=True,
            help="a directory (atna), a file (csv) or a collector's URL (syslog)",
        )
        parser.add_argument("--practice", type=int, help="only this practice's events")
        parser.add_argument("--since", help="from this day (YYYY-MM-DD), included")
        parser.add_argument("--until", help="to this day (YYYY-MM-DD), excluded")

    def handle(self, *args, **options) -> None:
        events = AuditEvent.objects.order_by("id")
        if options["practice"] is not None:
            events = events.filter(practice_id=options["practice"])
        if options["since"]:
            events = events.filter(at__gte=_day(options["since"]))
        if options["until"]:
            events = events.filter(at__lt=_day(options["until"]))
        if options["format"] == "syslog":
            self._send(events.iterator(2000), options["output"])
            return
        output = Path(options["output"])
        if options["format"] == "csv":
            output.parent.mkdir(parents=True, exist_ok=True)
            with output.open("w", newline="", encoding="utf-8") as out:
                count = write_csv(events.iterator(2000), out)
        else:
            output.mkdir(parents=True, exist_ok=True)
            count = 0
            for event in events.iterator(2000):
                (output / f"audit-{event.pk:010d}.xml").write_bytes(audit_message_xml(event))
                count += 1
        self.stdout.write(f"{count} audit events written to {output}")

    def _send(self, events: Iterable[AuditEvent], url: str) -> None:
        try:
            destination = syslog.parse_destination(url)
            count = syslog.send_events(events, destination)
        except (ImproperlyConfigured, OSError, ValueError) as exc:
            raise CommandError(f"audit events not sent to {url}: {exc}") from exc
        self.stdout.write(f"{count} audit events sent to {destination.url}")
