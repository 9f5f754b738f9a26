"""Reads for the worklist and the front desk's calendar, scoped to a practice.

``imaging_statuses`` derives, for a batch of appointments, the steps their imaging went
through. It reads, in the same few queries whatever the number of appointments:
1. the appointments' worklist items (status, ``first_fetched_at``);
2. the practice's studies that belong to one of them: linked to the appointment or to its
   item, or carrying the item's StudyInstanceUID or accession number (a study the pipeline
   has not linked yet, or linked elsewhere, still shows as received here);
3. the instances of those studies (counted, and for the thumbnails);
4. the appointments' mounts (dicomnet.dental), for "7/18 images" while an FMX comes in.
Every step reached stays in the list, so "images received (N)" is still shown once linked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from dicomnet.models import DicomInstance, DicomStudy, Mount
from patients.models import Appointment, Patient, Practice
from worklist.models import OperatoryStation, WorklistItem

# Step keys (also CSS classes ``chip-<key>``), in the order an appointment reaches them.
STEP_LABELS = {
    "scheduled": _("Scheduled"),
    "fetched": _("Fetched by device"),
    "in_progress": _("In progress"),
    "performed": _("Performed"),
    "discontinued": _("Discontinued"),
    "received": _("Images received"),
    "linked": _("Linked"),
    "needs_review": _("Needs review"),
    "error": _("Image error"),
}


@dataclass(frozen=True)
class Step:
    key: str
    count: int | None = None
    # Images the appointment's mount expects ("7/18 images"); count is then those placed.
    total: int | None = None

    @property
    def label(self) -> str:
        return str(STEP_LABELS[self.key])


@dataclass
class ImagingStatus:
    """What happened so far to an imaging appointment's worklist item and images."""

    item: WorklistItem | None = None
    studies: list[DicomStudy] = field(default_factory=list)
    image_count: int = 0
    steps: list[Step] = field(default_factory=list)
    mount: Mount | None = None

    @property
    def keys(self) -> list[str]:
        return [step.key for step in self.steps]

    @property
    def current(self) -> Step | None:
        """The step reached last, the one the calendar's chip shows ("Linked", not
        "Scheduled" beside it), with the image count once images were received."""
        if not self.steps:
            return None
        last = self.steps[-1]
        received = next((s for s in self.steps if s.key == "received"), None)
        if last.count is None and received is not None:
            return Step(last.key, received.count, received.total)
        return last


def appointments_of(practice: Practice) -> QuerySet[Appointment]:
    return Appointment.objects.for_practice(practice)


def calendar_appointments(
    practice: Practice, *, start: dt.datetime, end: dt.datetime, operatory: str | None = None
) -> QuerySet[Appointment]:
    """The practice's appointments starting in [start, end), cancelled ones left out."""
    appointments = (
        appointments_of(practice)
        .filter(start__gte=start, start__lt=end)
        .exclude(status=Appointment.Status.CANCELLED)
        .select_related("patient")
        .order_by("start", "operatory", "pk")
    )
    if operatory is not None:
        appointments = appointments.filter(operatory=operatory)
    return appointments


def operatories_of(practice: Practice, appointments: Iterable[Appointment] = ()) -> list[str]:
    """The practice's operatories (those mapped to a device, and any an appointment uses)."""
    names = set(OperatoryStation.objects.for_practice(practice).values_list("operatory", flat=True))
    names.update(a.operatory for a in appointments)
    return sorted(names, key=lambda name: (name == "", name))


def bookable_patients(practice: Practice) -> QuerySet[Patient]:
    return Patient.objects.for_practice(practice).order_by("family_name", "given_name")


def appointment_detail(practice: Practice, pk: int) -> Appointment:
    """One appointment of the practice; raises Appointment.DoesNotExist for anyone else's."""
    return appointments_of(practice).select_related("patient").get(pk=pk)


def imaging_status(appointment: Appointment) -> ImagingStatus:
    return imaging_statuses([appointment])[appointment.pk]


def imaging_statuses(appointments: Iterable[Appointment]) -> dict[int, ImagingStatus]:
    """Imaging steps of each appointment, keyed by its id. See the module docstring."""
    appointments = list(appointments)
    if not appointments:
        return {}
    practice_ids = {a.practice_id for a in appointments}
    if len(practice_ids) != 1:
        raise ValueError("appointments of several practices")
    practice_id = practice_ids.pop()
    by_appointment = {a.pk: a for a in appointments}
    items = {
        item.appointment_id: item
        for item in WorklistItem.objects.for_practice(practice_id).filter(
            appointment_id__in=by_appointment
        )
    }
    owner_of_item: dict[int | None, int | None] = {item.pk: a_id for a_id, item in items.items()}
    owner_of_uid = {item.study_instance_uid: a_id for a_id, item in items.items()}
    owner_of_accession = {item.accession_number: a_id for a_id, item in items.items()}

    belongs = Q(appointment_id__in=by_appointment) | Q(worklist_item_id__in=owner_of_item)
    if owner_of_uid:
        belongs |= Q(study_instance_uid__in=owner_of_uid)
        belongs |= Q(accession_number__in=owner_of_accession)
    studies = (
        DicomStudy.objects.for_practice(practice_id)
        .filter(belongs)
        .annotate(received=Count("instances__sop_instance_uid", distinct=True))
        .prefetch_related(
            Prefetch(
                "instances",
                queryset=DicomInstance.objects.latest_versions().order_by("instance_number", "id"),
            )
        )
        .order_by("created_at", "pk")
    )
    statuses = {pk: ImagingStatus(item=items.get(pk)) for pk in by_appointment}
    for mount in (
        Mount.objects.for_practice(practice_id)
        .filter(appointment_id__in=by_appointment)
        .select_related("template")
        .annotate(
            placed=Count("placements", distinct=True), slots=Count("template__slots", distinct=True)
        )
    ):
        statuses[mount.appointment_id].mount = mount  # type: ignore[index]  # filtered on it
    for study in studies:
        owners = {
            study.appointment_id,
            owner_of_item.get(study.worklist_item_id),
            owner_of_uid.get(study.study_instance_uid),
            owner_of_accession.get(study.accession_number) if study.accession_number else None,
        }
        for owner in statuses.keys() & owners:
            statuses[owner].studies.append(study)
    for appointment_id, status in statuses.items():
        status.steps = _steps(by_appointment[appointment_id], status)
        status.image_count = sum(study.received for study in status.studies)  # type: ignore[attr-defined]  # annotate()
    return statuses


def _steps(appointment: Appointment, status: ImagingStatus) -> list[Step]:
    steps: list[Step] = []
    item = status.item
    if item is not None:
        steps.append(Step("scheduled"))
        if item.first_fetched_at:
            steps.append(Step("fetched"))
        if item.status == WorklistItem.Status.IN_PROGRESS:
            steps.append(Step("in_progress"))
        elif item.status == WorklistItem.Status.COMPLETED:
            steps.append(Step("performed"))
        elif item.status == WorklistItem.Status.DISCONTINUED:
            steps.append(Step("discontinued"))
    received = sum(study.received for study in status.studies)  # type: ignore[attr-defined]  # annotate()
    mount = status.mount
    if received and mount is not None and mount.study_id is not None:
        total = mount.expected_images or (mount.slots + mount.extra_slots)  # type: ignore[attr-defined]  # annotate()
        steps.append(Step("received", mount.placed, total))  # type: ignore[attr-defined]
    elif received:
        steps.append(Step("received", received))
    item_pk = item.pk if item else None
    if any(
        study.status == DicomStudy.Status.PROCESSED
        and (
            study.appointment_id == appointment.pk
            or (item_pk is not None and study.worklist_item_id == item_pk)
        )
        for study in status.studies
    ):
        steps.append(Step("linked"))
    if any(study.status == DicomStudy.Status.NEEDS_REVIEW for study in status.studies):
        steps.append(Step("needs_review"))
    if any(study.status == DicomStudy.Status.ERROR for study in status.studies):
        steps.append(Step("error"))
    return steps
