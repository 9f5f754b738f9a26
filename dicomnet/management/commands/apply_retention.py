"""manage.py apply_retention [--apply] [--practice ID] [--today YYYY-MM-DD]: the studies past
each practice's retention (dicomnet/retention.py). A dry run by default: it lists what would
go. With --apply it deletes them, their files and previews, and audits each deletion."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dicomnet.retention import delete_study, expired_studies
from patients.models import Practice


class Command(BaseCommand):
    help = "List (or, with --apply, delete) the studies past their practice's retention."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="delete, not only list")
        parser.add_argument("--practice", type=int, help="only this practice (its id)")
        parser.add_argument("--today", help="the day to count from (YYYY-MM-DD); default today")

    def handle(self, *args, **options) -> None:
        try:
            today = dt.date.fromisoformat(options["today"]) if options["today"] else None
        except ValueError:
            raise CommandError(f"--today is not a date: {options['today']!r}") from None
        today = today or timezone.localdate()
        practices = Practice.objects.order_by("pk")
        if options["practice"] is not None:
            practices = practices.filter(pk=options["practice"])
        total = 0
        for practice in practices:
            if practice.retention_years is None:
                self.stdout.write(f"{practice}: no retention policy, everything is kept")
                continue
            expired = expired_studies(practice, today)
            verb = "deleting" if options["apply"] else "would delete"
            self.stdout.write(
                f"{practice}: keep {practice.retention_years} years after the last visit; "
                f"{verb} {len(expired)} studies"
            )
            for item in expired:
                study = item.study
                who = study.patient.chart_number if study.patient else study.patient_name
                self.stdout.write(
                    f"  {study.study_instance_uid} {study.study_date or '-'} {who} "
                    f"(last visit {item.last_visit}, kept until {item.keep_until})"
                )
                if options["apply"]:
                    delete_study(item, reason=f"retention: {practice.retention_years} years")
            total += len(expired)
        mode = "deleted" if options["apply"] else "dry run, nothing deleted"
        self.stdout.write(f"{total} studies past retention ({mode})")
