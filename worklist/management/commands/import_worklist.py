"""Import another system's worklist as appointments: query, then ``import_records``."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from dicomnet.models import DeviceService, DicomServer
from worklist.importing import import_records
from worklist.scu import WorklistQueryError, query_worklist


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Query a DICOM server's modality worklist and import its items as appointments."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--server", required=True, help="the DicomServer's id or AE title")
        parser.add_argument("--from", dest="date_from", required=True, help="YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", required=True, help="YYYY-MM-DD")
        parser.add_argument("--station", default="", help="scheduled station AE title")
        parser.add_argument("--modality", default="", help="IO, PX, CT…")
        parser.add_argument("--dry-run", action="store_true", help="show, save nothing")
        parser.add_argument("--timeout", type=float, default=None, help="seconds")

    def handle(self, *args, server: str, date_from: str, date_to: str, **options) -> None:
        provider = self._server(server)
        try:
            records = query_worklist(
                provider,
                date_from=_date(date_from),
                date_to=_date(date_to),
                station_ae=options["station"],
                modality=options["modality"],
                timeout=options["timeout"],
            )
        except WorklistQueryError as exc:
            raise CommandError(str(exc)) from None
        report = import_records(
            practice=provider.practice,
            server=provider,
            records=records,
            dry_run=options["dry_run"],
        )
        for line in report.lines:
            r = line.record
            when = f"{r.scheduled_start:%Y-%m-%d %H:%M}" if r.scheduled_start else "?"
            self.stdout.write(
                f"{line.outcome:9} {r.accession_number or '-':16} {when} "
                f"{r.display_name} ({r.patient_id or '-'}) {r.modality} {r.description}"
                + (f" — {line.message}" if line.message else "")
            )
        self.stdout.write(f"{provider.ae_title}: {report.summary()}")

    def _server(self, ref: str) -> DicomServer:
        servers = DicomServer.objects.select_related("practice")
        matches = list(servers.filter(pk=int(ref))) if ref.isdigit() else []
        matches = matches or list(servers.filter(ae_title=ref.strip()))
        if not matches:
            raise CommandError(f"no DICOM server with id or AE title {ref!r}")
        if len(matches) > 1:
            ids = ", ".join(f"{s.pk} ({s.practice})" for s in matches)
            raise CommandError(
                f"AE title {ref!r} is registered in several practices: use an id: {ids}"
            )
        server = matches[0]
        refusal = server.refusal(DeviceService.WORKLIST)
        if refusal:
            raise CommandError(refusal)
        return server
