"""Import another system's worklist items as appointments, idempotently.

``import_records`` takes the records ``worklist.scu.query_worklist`` returned. For each one:
1. skip it, saying why, when it has no accession number (a re-import could not find it
   again), no scheduled date, or no PatientID (no chart to file it under);
2. find the patient whose chart number is the PatientID, or open a chart from the
   record's demographics;
3. find the appointment by ``external_ref`` = "<AE title>:<accession number>", and create
   it or update what changed (time, patient, operatory, procedure, dentist); an unchanged
   one is left alone;
4. give the appointment's worklist item (created by ``worklist.services``) the remote's
   StudyInstanceUID, accession number and step IDs, so images made from either worklist
   link exactly, unless another item of the practice already carries them.
A dry run does all of it in a transaction that is rolled back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction

from dicomnet.models import DicomServer
from patients.models import Appointment, Patient, Practice
from patients.names import split_person_name
from worklist.models import OperatoryStation, WorklistItem
from worklist.scu import WorklistRecord

log = logging.getLogger("worklist.importing")

DEFAULT_DURATION = dt.timedelta(minutes=30)
CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"


@dataclass(frozen=True)
class ImportLine:
    record: WorklistRecord
    outcome: str
    message: str = ""
    appointment_id: int | None = None


@dataclass
class ImportReport:
    lines: list[ImportLine] = field(default_factory=list)
    dry_run: bool = False

    @property
    def counts(self) -> Counter:
        return Counter(line.outcome for line in self.lines)

    def summary(self) -> str:
        counts = self.counts
        text = ", ".join(f"{counts[o]} {o}" for o in (CREATED, UPDATED, UNCHANGED, SKIPPED))
        return text + (" (dry run: nothing saved)" if self.dry_run else "")


def external_ref(server: DicomServer, accession_number: str) -> str:
    return f"{server.ae_title}:{accession_number}"


def import_records(
    *,
    practice: Practice,
    server: DicomServer,
    records: list[WorklistRecord],
    dry_run: bool = False,
) -> ImportReport:
    """Create or update one appointment per record. See the module docstring."""
    if server.practice_id != practice.pk:
        raise ValueError("the worklist provider belongs to another practice")
    report = ImportReport(dry_run=dry_run)
    with transaction.atomic():
        # One import per provider at a time: two at once would both create what is new.
        list(DicomServer.objects.select_for_update().filter(pk=server.pk).values_list("pk"))
        for record in records:
            report.lines.append(_import_one(practice, server, record))
        if dry_run:
            transaction.set_rollback(True)
    log.info(
        "worklist import from %s into practice %s: %s",
        server.ae_title,
        practice.pk,
        report.summary(),
    )
    return report


def _import_one(practice: Practice, server: DicomServer, record: WorklistRecord) -> ImportLine:
    if not record.accession_number:
        return ImportLine(record, SKIPPED, "no accession number: a re-import could not find it")
    if record.scheduled_start is None:
        return ImportLine(record, SKIPPED, "no scheduled date")
    if not record.patient_id:
        return ImportLine(record, SKIPPED, "no PatientID: no chart to file it under")

    patient, new_chart = _patient_for(practice, record)
    ref = external_ref(server, record.accession_number)
    appointment = Appointment.objects.for_practice(practice).filter(external_ref=ref).first()
    values = {
        "patient": patient,
        "start": record.scheduled_start,
        "procedure_code": record.procedure_code[:20],
        "procedure_description": record.description[:200],
        "needs_imaging": True,
        "provider": _person(record.performing_physician)[:100],
    }
    operatory = _operatory_for(practice, record.station_ae_title)
    if operatory or appointment is None:
        values["operatory"] = operatory
    chart_note = f"new chart {patient.chart_number}" if new_chart else ""

    if appointment is None:
        appointment = Appointment.objects.create(
            practice=practice,
            external_ref=ref,
            end=record.scheduled_start + DEFAULT_DURATION,
            **values,
        )
        _adopt_identifiers(appointment, record)
        return ImportLine(record, CREATED, chart_note, appointment.pk)

    values["end"] = record.scheduled_start + (appointment.end - appointment.start)
    changed = [name for name, value in values.items() if getattr(appointment, name) != value]
    if changed:
        for name in changed:
            setattr(appointment, name, values[name])
        appointment.save()
    _adopt_identifiers(appointment, record)
    if not changed:
        return ImportLine(record, UNCHANGED, chart_note, appointment.pk)
    message = "changed: " + ", ".join(n for n in changed if n != "end")
    return ImportLine(
        record, UPDATED, "; ".join(filter(None, [message, chart_note])), appointment.pk
    )


def _patient_for(practice: Practice, record: WorklistRecord) -> tuple[Patient, bool]:
    patient = Patient.objects.for_practice(practice).filter(chart_number=record.patient_id).first()
    if patient is not None:
        return patient, False
    family, given = record.family_name, record.given_name
    if not (family or given):
        family, given = split_person_name(record.patient_name)
    patient = Patient.objects.create(
        practice=practice,
        chart_number=record.patient_id,
        family_name=family[:100] or "?",
        given_name=given[:100],
        birth_date=record.birth_date,
        sex=record.sex if record.sex in Patient.Sex.values else "",
    )
    log.info("worklist import opened chart %s for %s", patient.chart_number, patient.full_name)
    return patient, True


def _operatory_for(practice: Practice, station_ae_title: str) -> str:
    if not station_ae_title:
        return ""
    station = (
        OperatoryStation.objects.for_practice(practice)
        .filter(device__ae_title=station_ae_title)
        .order_by("operatory")
        .first()
    )
    return station.operatory if station else ""


def _person(pn: str) -> str:
    family, given = split_person_name(pn)
    return " ".join(filter(None, [given, family]))


def _adopt_identifiers(appointment: Appointment, record: WorklistRecord) -> None:
    item = WorklistItem.objects.filter(appointment=appointment).first()
    if item is None:
        return
    others = WorklistItem.objects.for_practice(item.practice_id).exclude(pk=item.pk)
    updates: dict[str, str] = {}
    accession = record.accession_number[:16]
    if accession and not others.filter(accession_number=accession).exists():
        updates["accession_number"] = accession
    uid = record.study_instance_uid[:64]
    if uid and not others.filter(study_instance_uid=uid).exists():
        updates["study_instance_uid"] = uid
    if record.step_id:
        updates["scheduled_procedure_step_id"] = record.step_id[:16]
    if record.requested_procedure_id:
        updates["requested_procedure_id"] = record.requested_procedure_id[:16]
    updates = {name: value for name, value in updates.items() if getattr(item, name) != value}
    if updates:
        WorklistItem.objects.filter(pk=item.pk).update(**updates)
