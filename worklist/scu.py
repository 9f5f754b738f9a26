"""Ask another system's Modality Worklist (MWL C-FIND SCU) what is scheduled.

``query_worklist`` returns plain ``WorklistRecord`` values, or raises ``WorklistQueryError``
whose message says, in plain words, what went wrong: the association was rejected (and
why), nothing answered in time, the connection was refused, or the remote answered with a
failure status. The practice's own AE title is the calling AE.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone
from pydicom.dataset import Dataset
from pynetdicom.sop_class import ModalityWorklistInformationFind
from pynetdicom.status import MODALITY_WORKLIST_SERVICE_CLASS_STATUS

from dicomnet.dimse.values import parse_da, parse_tm
from dicomnet.models import DeviceService, DicomServer
from dicomnet.net.association import ScuError, associate, find_answers, new_ae, peer_name
from patients.models import Practice

log = logging.getLogger("worklist.scu")


class WorklistQueryError(Exception):
    """The query failed; the message is meant for the person who asked."""


@dataclass(frozen=True)
class WorklistRecord:
    """One Scheduled Procedure Step of a remote worklist, decoded."""

    accession_number: str
    patient_id: str
    patient_name: str  # DICOM PN, Family^Given
    family_name: str
    given_name: str
    birth_date: dt.date | None
    sex: str
    scheduled_start: dt.datetime | None
    station_ae_title: str
    modality: str
    step_id: str
    step_description: str
    requested_procedure_id: str
    requested_procedure_description: str
    procedure_code: str
    study_instance_uid: str
    performing_physician: str

    @property
    def display_name(self) -> str:
        return " ".join(filter(None, [self.given_name, self.family_name])) or "?"

    @property
    def description(self) -> str:
        return self.step_description or self.requested_procedure_description


def worklist_providers(practice: Practice) -> QuerySet[DicomServer]:
    """The practice's peers that may be asked for a worklist."""
    return DicomServer.objects.for_practice(practice).allowing(DeviceService.WORKLIST)


def worklist_query(
    date_from: dt.date, *, date_to: dt.date, station_ae: str = "", modality: str = ""
) -> Dataset:
    """The C-FIND identifier: the date range and filters, and every key we read back."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "AccessionNumber",
        "RequestedProcedureID",
        "RequestedProcedureDescription",
        "StudyInstanceUID",
    ):
        setattr(ds, keyword, "")
    ds.RequestedProcedureCodeSequence = []
    step = Dataset()
    step.ScheduledStationAETitle = station_ae
    step.ScheduledProcedureStepStartDate = f"{date_from:%Y%m%d}-{date_to:%Y%m%d}"
    step.ScheduledProcedureStepStartTime = ""
    step.Modality = modality
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledProcedureStepID = ""
    step.ScheduledProtocolCodeSequence = []
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def query_worklist(
    server: DicomServer,
    *,
    date_from: dt.date,
    date_to: dt.date,
    station_ae: str = "",
    modality: str = "",
    timeout: float | None = None,
) -> list[WorklistRecord]:
    """Query ``server``'s worklist for the steps scheduled from ``date_from`` to ``date_to``.

    1. Associate as the practice's AE title (rejection, refusal, silence: explained).
    2. Send one C-FIND; collect the pending answers; stop at the final status.
    3. A failure status or a lost association raises; partial answers are not returned.
    """
    if date_from > date_to:
        raise WorklistQueryError(f"the range starts ({date_from}) after it ends ({date_to})")
    ae = new_ae(server, timeout)
    ae.add_requested_context(ModalityWorklistInformationFind)
    peer = peer_name(server)
    try:
        assoc = associate(ae, server)
    except ScuError as exc:
        raise WorklistQueryError(str(exc)) from exc
    try:
        if not assoc.accepted_contexts:
            raise WorklistQueryError(f"{peer} does not offer the Modality Worklist service")
        identifier = worklist_query(
            date_from, date_to=date_to, station_ae=station_ae.strip(), modality=modality.strip()
        )
        answers = find_answers(
            assoc,
            identifier,
            ModalityWorklistInformationFind,
            peer=peer,
            statuses=MODALITY_WORKLIST_SERVICE_CLASS_STATUS,
        )
        try:
            records = [record_from(found) for found in answers]
        except ScuError as exc:
            raise WorklistQueryError(str(exc)) from exc
    finally:
        if assoc.is_established:
            assoc.release()
    log.info(
        "worklist of %s from %s to %s: %d item(s)",
        server.ae_title,
        date_from,
        date_to,
        len(records),
    )
    return records


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return str(value).strip() if value is not None else ""


def _first_code(ds: Dataset, keyword: str) -> str:
    for code in ds.get(keyword, None) or []:
        if _text(code, "CodeValue"):
            return _text(code, "CodeValue")
    return ""


def record_from(found: Dataset) -> WorklistRecord:
    """Decode one answer (text decoded per its SpecificCharacterSet by pydicom)."""
    steps = found.get("ScheduledProcedureStepSequence", None) or [Dataset()]
    step = steps[0]
    day = parse_da(step.get("ScheduledProcedureStepStartDate"))
    time = parse_tm(step.get("ScheduledProcedureStepStartTime")) or dt.time.min
    start = None
    if day is not None:
        start = timezone.make_aware(dt.datetime.combine(day, time.replace(microsecond=0)))
    name = found.get("PatientName", None)
    return WorklistRecord(
        accession_number=_text(found, "AccessionNumber"),
        patient_id=_text(found, "PatientID"),
        patient_name=str(name or "").strip(),
        family_name=(name.family_name if name else "").strip(),
        given_name=(name.given_name if name else "").strip(),
        birth_date=parse_da(found.get("PatientBirthDate")),
        sex=_text(found, "PatientSex"),
        scheduled_start=start,
        station_ae_title=_text(step, "ScheduledStationAETitle"),
        modality=_text(step, "Modality"),
        step_id=_text(step, "ScheduledProcedureStepID"),
        step_description=_text(step, "ScheduledProcedureStepDescription"),
        requested_procedure_id=_text(found, "RequestedProcedureID"),
        requested_procedure_description=_text(found, "RequestedProcedureDescription"),
        procedure_code=_first_code(step, "ScheduledProtocolCodeSequence")
        or _first_code(found, "RequestedProcedureCodeSequence"),
        study_instance_uid=_text(found, "StudyInstanceUID"),
        performing_physician=str(step.get("ScheduledPerformingPhysicianName", "") or "").strip(),
    )
