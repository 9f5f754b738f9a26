"""Reads of patients and notifications, scoped to a practice (the notices' read state, to the
reader too)."""

from __future__ import annotations

import datetime as dt
import re

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from patients import roles
from patients.health_cards import looks_like_ramq_number, normalise_ramq_number
from patients.models import (
    Appointment,
    Notification,
    NotificationRead,
    Patient,
    Practice,
    User,
)
from patients.names import normalise_name

_DMY = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})")


def search_patients(practice: Practice, query: str) -> QuerySet[Patient]:
    """The practice's patients a front-desk search names, in folded-name order.

    - a RAMQ health card number ("COTZ 8803 1412"): that card;
    - a date (2024-01-15, 20240115 or 15/01/2024): that date of birth;
    - otherwise the chart number, or the name: every word starts a word of the name, in any
      order, ignoring accents and case ("cote", "zoe cote", "Côté Z").

    Every branch narrows on an index: (practice, health card), (practice, birth date),
    (practice, chart number), or a range of (practice, name_key) or (practice,
    given_first_key) starting with one of the words. The words are then checked on the rows
    found; only when that finds no one are all the practice's names read, for an inner word of
    a compound name. With 50,000 patients this stays in milliseconds (docs/benchmarks.md).
    """
    patients = Patient.objects.for_practice(practice).order_by("name_key", "chart_number")
    text = query.strip()
    if not text:
        return patients
    if looks_like_ramq_number(text):
        return patients.filter(health_card_number=normalise_ramq_number(text))
    birth_date = _as_date(text)
    if birth_date is not None:
        return patients.filter(birth_date=birth_date)
    by_chart = Q(chart_number__in={text, text.upper()})
    words = normalise_name(text).split()
    if not words:
        return patients.filter(by_chart)
    narrowed = by_chart
    for word in words:
        narrowed |= _prefix_q("name_key", word) | _prefix_q("given_first_key", word)
    every_word = Q()
    for word in words:
        every_word &= Q(name_key__startswith=word) | Q(name_key__contains=f" {word}")
    found = patients.filter(narrowed)
    if len(words) > 1:  # one word: the index range is the whole condition
        found = found.filter(by_chart | every_word)
    if found.exists():
        return found
    # No name starts with these words: an inner word of a compound name ("pelletier" in
    # O'Connor-Pelletier), found by reading the practice's names (a scan, tens of ms at 50,000).
    return patients.filter(every_word)


def _prefix_q(field: str, prefix: str) -> Q:
    """An index range: the values starting with ``prefix``."""
    above = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": above})


def _as_date(text: str) -> dt.date | None:
    compact = text.replace("-", "")
    try:
        if re.fullmatch(r"\d{8}", compact) and (len(text) == 8 or text.count("-") == 2):
            return dt.date(int(compact[:4]), int(compact[4:6]), int(compact[6:]))
        if m := _DMY.fullmatch(text):
            return dt.date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        return None
    return None


def _reads_by(user: User) -> QuerySet[NotificationRead]:
    """The user's read mark of the outer query's notice (at most one: unique per pair)."""
    return NotificationRead.objects.filter(notification=OuterRef("pk"), user=user)


def for_audience(user: User, notices: QuerySet[Notification]) -> QuerySet[Notification]:
    """The notices meant for this person: operations alerts for the practice admins
    (``manage_devices``), the images' notices for the clinic's people who deal with
    patients' images or the review queue."""
    if not user.has_perm(roles.MANAGE_DEVICES):
        notices = notices.filter(for_admins=False)
    if not (user.has_perm(roles.VIEW_IMAGES) or user.has_perm(roles.VIEW_REVIEW_QUEUE)):
        notices = notices.filter(for_admins=True)
    return notices


def unread_notifications(user: User) -> QuerySet[Notification]:
    """The notices of the user's practice meant for them that they have not read."""
    notices = Notification.objects.for_practice(user.practice_id).filter(~Exists(_reads_by(user)))
    return for_audience(user, notices)


def notifications_for(user: User, *, unread: bool = False) -> QuerySet[Notification]:
    """The notices of the user's practice (only those unread by them, if ``unread``), each
    with ``read_at``: when this user read it, None while it is unread for them (someone
    else's reading does not count)."""
    notices = (
        unread_notifications(user)
        if unread
        else for_audience(user, Notification.objects.for_practice(user.practice_id))
    )
    return notices.annotate(read_at=Subquery(_reads_by(user).values("read_at")[:1]))


def chart_appointments(
    patient: Patient, now: dt.datetime, *, past_limit: int = 10
) -> tuple[list[Appointment], list[Appointment]]:
    """The chart's appointments: every upcoming one (soonest first, cancelled left out), and
    the latest ``past_limit`` past ones (newest first, cancelled and no-shows included:
    the desk needs to see those)."""
    appointments = Appointment.objects.for_practice(patient.practice_id).filter(patient=patient)
    upcoming = appointments.filter(start__gte=now).exclude(status=Appointment.Status.CANCELLED)
    past = appointments.filter(start__lt=now).order_by("-start")[:past_limit]
    return list(upcoming.order_by("start")), list(past)
