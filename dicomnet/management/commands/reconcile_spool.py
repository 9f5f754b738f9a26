from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand

from dicomnet.ingest.reconcile import reconcile_spool


class Command(BaseCommand):
    help = "Re-enqueue received objects whose processing never finished; clean partial files."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--min-age", type=int, default=0, help="seconds; skip newer objects")

    def handle(self, *args, min_age: int, **options) -> None:
        report = reconcile_spool(min_age=dt.timedelta(seconds=min_age))
        self.stdout.write(
            f"removed {report.removed_partials} partial file(s), requeued {report.requeued}, "
            f"recovered {report.recovered_orphans} orphan(s)"
        )
