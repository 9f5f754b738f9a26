"""The privacy officer's questions to the audit trail (issue 10 §3): by patient, person,
device, kind of event and dates, within one practice. "Who saw Zoé Tremblay's X-rays, and
when" is one query: her events of image access (``IMAGE_ACCESS_EVENTS``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from patients.audit import COMMUNICATION_EVENTS, IMAGE_ACCESS_EVENTS
from patients.models import AuditEvent, Practice
from patients.selectors import search_patients

# The kinds of events the page offers, as DICOM event IDs.
KINDS: dict[str, tuple[str, ...]] = {
    "images": IMAGE_ACCESS_EVENTS,
    "records": ("110110",),
    "queries": ("110112",),
    "exports": ("110106", "110104", "110102"),
    "logins": ("110114",),
    "security": ("110113",),
    "audit": ("110101",),
    "network": ("110100", "110107", "110108"),
}


@dataclass(frozen=True)
class AuditQuery:
    patient: str = ""  # a name, chart number, date of birth or RAMQ number
    user: str = ""  # a user name
    device: str = ""  # an AE title
    kind: str = ""  # a key of KINDS, or "" for every event
    since: dt.date | None = None
    until: dt.date | None = None  # included

    def describe(self) -> dict[str, str]:
        """The query as the audit's own event records it (110101)."""
        return {k: str(v) for k, v in self.__dict__.items() if v}


def search_audit(practice: Practice, query: AuditQuery) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.filter(practice_id=practice.pk).order_by("-at", "-id")
    if query.patient:
        ids = list(search_patients(practice, query.patient).values_list("pk", flat=True)[:500])
        events = events.filter(patient_id__in=ids)
    if query.user:
        events = events.filter(username__iexact=query.user.strip())
    if query.device:
        events = events.filter(ae_title__iexact=query.device.strip())
    if query.kind in KINDS:
        events = events.filter(event_id__in=KINDS[query.kind])
    if query.since:
        events = events.filter(at__gte=_start_of(query.since))
    if query.until:
        events = events.filter(at__lt=_start_of(query.until + dt.timedelta(days=1)))
    return events


def who_saw_images(practice: Practice, patient_id: int) -> QuerySet[AuditEvent]:
    """Every access to the patient's images, newest first, with the person or device."""
    return (
        AuditEvent.objects.filter(practice_id=practice.pk, patient_id=patient_id)
        .filter(Q(event_id__in=IMAGE_ACCESS_EVENTS))
        .order_by("-at", "-id")
    )


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def communications(practice: Practice) -> QuerySet[AuditEvent]:
    """The register of communications: what was sent to whom, newest first."""
    return (
        AuditEvent.objects.filter(practice_id=practice.pk)
        .filter(Q(event_id__in=COMMUNICATION_EVENTS) | Q(detail__via="token"))
        .exclude(outcome__gt=AuditEvent.Outcome.SUCCESS)
        .order_by("-at", "-id")
    )
