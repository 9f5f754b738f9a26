"""Writes for the patients app."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.audit import record_action
from patients.models import (
    AccessLog,
    Appointment,
    Notification,
    NotificationRead,
    Patient,
    Practice,
    User,
)
from patients.selectors import unread_notifications

LONGEST_APPOINTMENT = dt.timedelta(hours=12)
# Appointments that are over: they are neither moved nor cancelled any more.
CLOSED_STATUSES = (
    Appointment.Status.CANCELLED,
    Appointment.Status.COMPLETED,
    Appointment.Status.NO_SHOW,
)


def audit(user: User, *, action: str, patient: Patient | None = None, ref: str = "") -> None:
    """Record who accessed what (Law 25): in the audit trail (patients.audit), and in the
    practice's access log."""
    record_action(user, action=action, patient=patient, ref=ref)
    if user.practice_id:
        AccessLog.objects.create(
            practice_id=user.practice_id,
            user=user,
            patient=patient,
            action=action,
            object_ref=ref[:255],
        )


def mark_notifications_read(user: User, *, patient: Patient) -> int:
    """The patient's new-image notices are read for ``user`` once they open the patient's page."""
    return _mark_read(user, unread_notifications(user).filter(patient=patient))


def mark_notification_read(user: User, pk: int) -> int:
    """One notice dismissed from the user's bell (another practice's is left alone)."""
    return _mark_read(user, unread_notifications(user).filter(pk=pk))


def mark_notifications_read_all(user: User) -> int:
    return _mark_read(user, unread_notifications(user))


def _mark_read(user: User, unread: QuerySet[Notification]) -> int:
    """A read mark of ``user`` on each of ``unread``; returns how many were marked.

    A mark made meanwhile by the same person (a double click) is skipped by the unique pair.
    """
    now = timezone.now()
    marks = [
        NotificationRead(notification_id=pk, user=user, read_at=now)
        for pk in unread.values_list("pk", flat=True)
    ]
    NotificationRead.objects.bulk_create(marks, ignore_conflicts=True)
    return len(marks)


def mark_unread(notification: Notification) -> list[int]:
    """New images: the notice is unread again for everyone. Returns who had read it (their
    new unread spell is worth an email; the others were told already)."""
    marks = NotificationRead.objects.filter(notification=notification)
    readers = list(marks.values_list("user_id", flat=True))
    marks.delete()
    return readers


# Appointments. Saving one also brings its worklist item in line (worklist.apps connects
# worklist.services.sync_appointment to post_save): created, moved or discontinued with it.


@transaction.atomic
def create_appointment(
    *,
    practice: Practice,
    patient: Patient,
    start: dt.datetime,
    end: dt.datetime,
    operatory: str = "",
    procedure_code: str = "",
    procedure_description: str = "",
    needs_imaging: bool = False,
    provider: str = "",
) -> Appointment:
    """Book an appointment; raises ValidationError (a message for the user) if it can't be."""
    if patient.practice_id != practice.pk:
        raise ValidationError(_("This patient is not a patient of your practice."))
    _check_slot(practice, start=start, end=end, operatory=operatory)
    return Appointment.objects.create(
        practice=practice,
        patient=patient,
        start=start,
        end=end,
        operatory=operatory,
        procedure_code=procedure_code,
        procedure_description=procedure_description,
        needs_imaging=needs_imaging,
        provider=provider,
    )


@transaction.atomic
def move_appointment(
    appointment: Appointment,
    *,
    start: dt.datetime,
    end: dt.datetime | None = None,
    operatory: str | None = None,
) -> Appointment:
    """Move to another time (same length unless ``end`` is given) and/or operatory."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if appointment.status in CLOSED_STATUSES:
        raise ValidationError(
            _("A %(status)s appointment cannot be moved.")
            % {"status": appointment.get_status_display().lower()}
        )
    end = end or start + (appointment.end - appointment.start)
    operatory = appointment.operatory if operatory is None else operatory
    _check_slot(
        appointment.practice, start=start, end=end, operatory=operatory, exclude=appointment
    )
    appointment.start, appointment.end, appointment.operatory = start, end, operatory
    appointment.save(update_fields=["start", "end", "operatory"])
    return appointment


@transaction.atomic
def cancel_appointment(appointment: Appointment) -> Appointment:
    """Cancel; cancelling twice is harmless. A completed appointment stays completed."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if appointment.status == Appointment.Status.CANCELLED:
        return appointment
    if appointment.status in CLOSED_STATUSES:
        raise ValidationError(
            _("A %(status)s appointment cannot be cancelled.")
            % {"status": appointment.get_status_display().lower()}
        )
    appointment.status = Appointment.Status.CANCELLED
    appointment.save(update_fields=["status"])
    return appointment


def _check_slot(
    practice: Practice,
    *,
    start: dt.datetime,
    end: dt.datetime,
    operatory: str,
    exclude: Appointment | None = None,
) -> None:
    """The times make sense and the operatory is free then."""
    if end <= start:
        raise ValidationError(_("The appointment must end after it starts."))
    if end - start > LONGEST_APPOINTMENT:
        raise ValidationError(_("An appointment cannot last more than 12 hours."))
    if not operatory:
        return
    overlapping = (
        Appointment.objects.for_practice(practice)
        .filter(operatory=operatory, start__lt=end, end__gt=start)
        .exclude(status__in=(Appointment.Status.CANCELLED, Appointment.Status.NO_SHOW))
        .select_related("patient")
    )
    if exclude is not None:
        overlapping = overlapping.exclude(pk=exclude.pk)
    taken = overlapping.first()
    if taken is not None:
        raise ValidationError(
            _("%(operatory)s is already booked from %(start)s to %(end)s (%(patient)s).")
            % {
                "operatory": operatory,
                "start": timezone.localtime(taken.start).strftime("%H:%M"),
                "end": timezone.localtime(taken.end).strftime("%H:%M"),
                "patient": taken.patient.full_name,
            }
        )
