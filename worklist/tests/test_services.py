"""Worklist items follow their appointments."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from patients.models import Appointment, Patient
from worklist.models import PerformedProcedureStep, WorklistItem


def book(practice, **overrides) -> Appointment:
    start = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time(16, 30)))
    fields = dict(
        practice=practice,
        patient=Patient.objects.get(practice=practice, chart_number="1001"),
        start=start,
        end=start + dt.timedelta(minutes=30),
        operatory="OP-2",
        procedure_code="D0330",
        procedure_description="Panoramic radiographic image",
        needs_imaging=True,
        provider="Dre Marie Gauthier",
    )
    return Appointment.objects.create(**{**fields, **overrides})


def test_an_imaging_appointment_gets_a_scheduled_step_with_identifiers_up_front(practice):
    item = book(practice).worklist_item
    assert item.status == WorklistItem.Status.SCHEDULED
    assert item.modality == "PX"  # D0330, from the procedure mapping
    assert item.scheduled_station_ae_title == "PLANMECA"  # OP-2's device
    assert item.patient_name == "Côté^Zoé" and item.patient_id == "1001"
    assert item.accession_number.startswith("NX") and len(item.accession_number) <= 16
    assert item.study_instance_uid and len(item.study_instance_uid) <= 64
    assert item.performing_physician == "Dre Marie Gauthier"


def test_moving_updates_and_cancelling_discontinues(practice):
    appointment = book(practice)
    uid = appointment.worklist_item.study_instance_uid
    appointment.start += dt.timedelta(hours=1)
    appointment.operatory = "OP-1"
    appointment.save()
    item = WorklistItem.objects.get(appointment=appointment)
    assert (item.scheduled_start, item.scheduled_station_ae_title) == (
        appointment.start,
        "CARESTREAM",
    )
    assert item.study_instance_uid == uid, "identifiers never change once given to devices"

    appointment.status = Appointment.Status.CANCELLED
    appointment.save()
    item.refresh_from_db()
    assert item.status == WorklistItem.Status.DISCONTINUED

    appointment.status = Appointment.Status.CONFIRMED  # re-booked
    appointment.save()
    item.refresh_from_db()
    assert item.status == WorklistItem.Status.SCHEDULED


def test_a_step_a_device_discontinued_stays_discontinued(practice):
    appointment = book(practice)
    item = appointment.worklist_item
    PerformedProcedureStep.objects.create(
        practice=practice,
        sop_instance_uid="1.2.3.4",
        worklist_item=item,
        calling_ae="PLANMECA",
        status=PerformedProcedureStep.Status.DISCONTINUED,
    )
    WorklistItem.objects.filter(pk=item.pk).update(status=WorklistItem.Status.DISCONTINUED)
    appointment.procedure_description = "Panoramic, retake"
    appointment.save()
    item.refresh_from_db()
    assert item.status == WorklistItem.Status.DISCONTINUED


def test_no_imaging_no_step_and_patient_corrections_reach_scheduled_steps(practice):
    assert not hasattr(book(practice, needs_imaging=False), "worklist_item")
    item = book(practice).worklist_item
    patient = item.patient
    patient.family_name = "Côté-Roy"
    patient.save()
    item.refresh_from_db()
    assert item.patient_name == "Côté-Roy^Zoé"
    assert item.patient_name_key == "cote roy zoe"
