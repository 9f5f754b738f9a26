"""The calendar's layout: which days a view covers and where each appointment sits.

Plain functions over already-selected appointments; the views read them through
``worklist.selectors`` and render what these return.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.utils import timezone
from django.utils.translation import gettext as _

from patients.models import Appointment
from worklist.selectors import ImagingStatus

VIEWS = ("day", "week")
PX_PER_MINUTE = 1.5  # static/css/nexrel.css draws the hour lines 90 px apart
DAY_FIRST_HOUR, DAY_LAST_HOUR = 7, 19  # widened when an appointment falls outside


class BadCalendarQuery(ValueError):
    """A query string the calendar can't show; the message is for the user."""


@dataclass(frozen=True)
class CalendarQuery:
    view: str
    day: dt.date
    operatory: str | None  # None: every operatory

    @classmethod
    def from_params(cls, params, *, today: dt.date) -> CalendarQuery:
        view = params.get("view") or "day"
        if view not in VIEWS:
            raise BadCalendarQuery(_("Unknown view “%(view)s”: use day or week.") % {"view": view})
        raw = params.get("date") or ""
        try:
            day = dt.date.fromisoformat(raw) if raw else today
        except ValueError:
            raise BadCalendarQuery(
                _("Bad date “%(date)s”: use YYYY-MM-DD.") % {"date": raw}
            ) from None
        return cls(view=view, day=day, operatory=params.get("operatory") or None)

    @property
    def first_day(self) -> dt.date:
        return self.day - dt.timedelta(days=self.day.weekday()) if self.view == "week" else self.day

    @property
    def days(self) -> list[dt.date]:
        count = 7 if self.view == "week" else 1
        return [self.first_day + dt.timedelta(days=n) for n in range(count)]

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """The local midnights around the view's days, as aware datetimes."""
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(self.days[0], dt.time.min)
        end = dt.datetime.combine(self.days[-1] + dt.timedelta(days=1), dt.time.min)
        return timezone.make_aware(start, tz), timezone.make_aware(end, tz)

    def params(self, **changes) -> str:
        """This query's string, with some values changed (``day`` as a date)."""
        values = {"view": self.view, "date": self.day.isoformat(), "operatory": self.operatory}
        if "day" in changes:
            changes["date"] = changes.pop("day").isoformat()
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v})

    def step(self, direction: int) -> dt.date:
        return self.day + dt.timedelta(days=direction * (7 if self.view == "week" else 1))


@dataclass
class Entry:
    """An appointment as the calendar shows it."""

    appointment: Appointment
    imaging: ImagingStatus
    top: float = 0
    height: float = 0

    @property
    def local_start(self) -> dt.datetime:
        return timezone.localtime(self.appointment.start)

    @property
    def local_end(self) -> dt.datetime:
        return timezone.localtime(self.appointment.end)


@dataclass
class Column:
    title: str
    operatory: str | None = None
    day: dt.date | None = None
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Grid:
    columns: list[Column]
    hours: list[int]
    height: float
    hour_height: float


def day_grid(
    day: dt.date,
    *,
    appointments: list[Appointment],
    statuses: dict[int, ImagingStatus],
    operatories: list[str],
    no_operatory: str,
) -> Grid:
    """One column per operatory; each entry placed by its start and length, in pixels."""
    first, last = DAY_FIRST_HOUR, DAY_LAST_HOUR
    for appointment in appointments:
        start, end = timezone.localtime(appointment.start), timezone.localtime(appointment.end)
        first = min(first, start.hour)
        last = max(last, end.hour + (1 if end.minute else 0) if end.date() == day else 24)
    origin = timezone.make_aware(
        dt.datetime.combine(day, dt.time(first)), timezone.get_current_timezone()
    )
    columns = {name: Column(title=name or no_operatory, operatory=name) for name in operatories}
    for appointment in appointments:
        minutes = (appointment.start - origin).total_seconds() / 60
        length = (appointment.end - appointment.start).total_seconds() / 60
        column = columns.setdefault(
            appointment.operatory,
            Column(title=appointment.operatory or no_operatory, operatory=appointment.operatory),
        )
        column.entries.append(
            Entry(
                appointment,
                statuses[appointment.pk],
                top=round(minutes * PX_PER_MINUTE, 1),
                height=round(max(length, 15) * PX_PER_MINUTE, 1),
            )
        )
    return Grid(
        columns=list(columns.values()),
        hours=list(range(first, last)),
        height=round((last - first) * 60 * PX_PER_MINUTE, 1),
        hour_height=60 * PX_PER_MINUTE,
    )


def week_columns(
    days: list[dt.date], appointments: list[Appointment], statuses: dict[int, ImagingStatus]
) -> list[Column]:
    """One column per day, its appointments in order of time."""
    columns = {day: Column(title="", day=day) for day in days}
    for appointment in appointments:
        day = timezone.localtime(appointment.start).date()
        if day in columns:
            columns[day].entries.append(Entry(appointment, statuses[appointment.pk]))
    return list(columns.values())
