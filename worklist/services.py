"""Writes for the worklist: keep one Scheduled Procedure Step per imaging appointment.

``sync_appointment`` is called for every saved appointment (``worklist.apps`` connects it:
the patients app must not import the worklist). It
1. discontinues the item of an appointment that no longer needs imaging or was cancelled;
2. otherwise creates the item (accession number, step IDs and StudyInstanceUID assigned
   once, up front) or updates it from the appointment: time, modality from the procedure
   code, station AE title from the operatory, demographics from the patient.
"""

from __future__ import annotations

import logging

from django.db import transaction
from pydicom.uid import generate_uid

from dicomnet.dental.mounts import sync_appointment_mount
from dicomnet.dental.seed import ensure_templates
from dicomnet.models import MountTemplate
from patients.models import Appointment, Patient, Practice
from worklist.models import OperatoryStation, ProcedureModality, WorklistItem

log = logging.getLogger("worklist.services")

# CDT codes and the modality their images come from; practices edit their own copy.
DEFAULT_PROCEDURE_MODALITIES = {
    "D0210": ("IO", "Intraoral - comprehensive series"),
    "D0220": ("IO", "Intraoral - periapical first image"),
    "D0230": ("IO", "Intraoral - periapical each additional image"),
    "D0270": ("IO", "Bitewing - single image"),
    "D0272": ("IO", "Bitewings - two images"),
    "D0273": ("IO", "Bitewings - three images"),
    "D0274": ("IO", "Bitewings - four images"),
    "D0277": ("IO", "Vertical bitewings"),
    "D0330": ("PX", "Panoramic image"),
    "D0340": ("PX", "Cephalometric image"),
    "D0364": ("CT", "Cone beam CT - less than one jaw"),
    "D0365": ("CT", "Cone beam CT - one full dental arch, mandible"),
    "D0366": ("CT", "Cone beam CT - one full dental arch, maxilla"),
    "D0367": ("CT", "Cone beam CT - both jaws"),
    # CDA / ACDQ (Canada): periapicals 02111 (one image) … 02125 (fifteen), bitewings 02141
    # (one) … 02146 (six), the complete series and the panoramic.
    "02101": ("IO", "Radiographs - complete series (18 images)"),
    "02102": ("IO", "Radiographs - complete series (20 images)"),
    **{f"021{n + 10:02d}": ("IO", f"Radiographs - periapical, {n} image(s)") for n in range(1, 16)},
    **{f"0214{n}": ("IO", f"Radiographs - bitewing, {n} image(s)") for n in range(1, 7)},
    "02601": ("PX", "Radiographs - panoramic"),
}
# The mount template (dicomnet.dental.seed key) and the expected image count of a code.
DEFAULT_PROCEDURE_MOUNTS: dict[str, tuple[str, int]] = {
    "D0210": ("fmx-18", 18),
    "D0272": ("bitewings-2", 2),
    "D0274": ("bitewings-4", 4),
    "D0277": ("vertical-bitewings-4", 4),
    "02101": ("fmx-18", 18),
    "02102": ("fmx-20", 20),
    **{f"021{n + 10:02d}": ("free", n) for n in range(1, 16)},
    **{f"0214{n}": ("free", n) for n in range(1, 7)},
    "02142": ("bitewings-2", 2),
    "02144": ("bitewings-4", 4),
}
ENDED = (Appointment.Status.CANCELLED, Appointment.Status.NO_SHOW)


def ensure_procedure_modalities(practice: Practice) -> None:
    """Give a practice the default procedure → modality mapping (existing rows are kept)."""
    ensure_templates()
    templates = {t.key: t for t in MountTemplate.objects.all()}
    for code, (modality, description) in DEFAULT_PROCEDURE_MODALITIES.items():
        key, expected = DEFAULT_PROCEDURE_MOUNTS.get(code, ("", None))
        ProcedureModality.objects.get_or_create(
            practice=practice,
            procedure_code=code,
            defaults={
                "modality": modality,
                "description": description,
                "mount_template": templates.get(key),
                "expected_images": expected,
            },
        )


def mount_template_for(
    practice: Practice, procedure_code: str
) -> tuple[MountTemplate | None, int | None]:
    """The mount template and expected image count the procedure code books."""
    mapped = (
        ProcedureModality.objects.for_practice(practice)
        .filter(procedure_code=procedure_code)
        .select_related("mount_template")
        .first()
    )
    if mapped:
        return mapped.mount_template, mapped.expected_images
    key, expected = DEFAULT_PROCEDURE_MOUNTS.get(procedure_code, ("", None))
    if not key:
        return None, expected
    ensure_templates()
    return MountTemplate.objects.filter(key=key).first(), expected


def sync_mount(appointment: Appointment) -> None:
    """Give an imaging appointment the mount its procedure code books (see
    ``dicomnet.dental.mounts.sync_appointment_mount``)."""
    if not appointment.needs_imaging or appointment.status in ENDED:
        return
    template, expected = mount_template_for(appointment.practice, appointment.procedure_code)
    sync_appointment_mount(appointment, template, expected)


def modality_for(practice: Practice, procedure_code: str) -> str:
    mapped = (
        ProcedureModality.objects.for_practice(practice)
        .filter(procedure_code=procedure_code)
        .first()
    )
    if mapped:
        return mapped.modality
    return DEFAULT_PROCEDURE_MODALITIES.get(procedure_code, ("OT", ""))[0]


def station_for(practice: Practice, operatory: str) -> str:
    station = (
        OperatoryStation.objects.for_practice(practice)
        .filter(operatory=operatory)
        .select_related("device")
        .first()
    )
    return station.device.ae_title if station else ""


def dicom_person_name(family: str, given: str) -> str:
    return f"{family}^{given}"


def _demographics(patient: Patient) -> dict:
    return {
        "patient": patient,
        "patient_name": dicom_person_name(patient.family_name, patient.given_name),
        "patient_id": patient.chart_number,
        "patient_birth_date": patient.birth_date,
        "patient_sex": patient.sex,
    }


@transaction.atomic
def sync_appointment(appointment: Appointment) -> WorklistItem | None:
    """Bring the appointment's worklist item in line with it. See the module docstring."""
    item = WorklistItem.objects.select_for_update().filter(appointment=appointment).first()
    if not appointment.needs_imaging or appointment.status in ENDED:
        if item and item.status in (WorklistItem.Status.SCHEDULED, WorklistItem.Status.IN_PROGRESS):
            item.status = WorklistItem.Status.DISCONTINUED
            item.save(update_fields=["status", "updated_at"])
            log.info("worklist item %s discontinued", item.accession_number)
        return item

    practice = appointment.practice
    fields = {
        **_demographics(appointment.patient),
        "modality": modality_for(practice, appointment.procedure_code),
        "scheduled_station_ae_title": station_for(practice, appointment.operatory),
        "scheduled_start": appointment.start,
        "step_description": appointment.procedure_description[:64],
        "requested_procedure_code": appointment.procedure_code[:16],
        "performing_physician": appointment.provider[:64],
    }
    if appointment.status == Appointment.Status.COMPLETED:
        fields["status"] = WorklistItem.Status.COMPLETED
    if item is None:
        item = WorklistItem(practice=practice, appointment=appointment, **fields)
        item.study_instance_uid = generate_uid()
        item.accession_number = item.requested_procedure_id = "pending"
        item.scheduled_procedure_step_id = "pending"
        item.save()
        # Identifiers from the row's id: unique per practice, at most 16 characters.
        item.accession_number = f"NX{item.pk:010d}"
        item.requested_procedure_id = f"RP{item.pk:010d}"
        item.scheduled_procedure_step_id = f"SPS{item.pk:09d}"
        item.save(
            update_fields=[
                "accession_number",
                "requested_procedure_id",
                "scheduled_procedure_step_id",
            ]
        )
        log.info("worklist item %s scheduled for %s", item.accession_number, appointment)
        return item
    for name, value in fields.items():
        setattr(item, name, value)
    if (
        item.status == WorklistItem.Status.DISCONTINUED
        and "status" not in fields
        and not item.mpps.exists()  # a device discontinued it: that stands
    ):
        item.status = WorklistItem.Status.SCHEDULED  # re-booked after a cancellation
    item.save()
    return item


def refresh_demographics(patient: Patient) -> int:
    """A corrected name or birth date reaches the items not yet performed."""
    count = 0
    for item in WorklistItem.objects.filter(patient=patient, status=WorklistItem.Status.SCHEDULED):
        for name, value in _demographics(patient).items():
            setattr(item, name, value)
        item.save()
        count += 1
    return count
