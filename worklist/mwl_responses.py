"""A worklist item as an MWL C-FIND response (PS3.4 K.6.1.2.2, return keys).

The response carries the item's type 1 and type 2 return keys (type 2 empty when Nexrel holds
no value), plus every other attribute the query asked for, empty. Its SpecificCharacterSet is
the device profile's: pydicom encodes the names by it, so "Côté^Zoé" leaves as UTF-8 for
ISO_IR 192 and as Latin-1 for ISO_IR 100.

``encoded_response`` is what the SCP sends: the response encoded once in the association's
transfer syntax and read back as raw elements, which pydicom writes out as they are. Encoding
a fresh dataset costs pydicom ~1 ms per item; devices poll the same day's worklist again and
again, so the encoded answers are kept while the item's answer is unchanged.
"""

from __future__ import annotations

from django.utils import timezone
from pydicom import Dataset
from pydicom.dataelem import DataElement

from dicomnet.dimse.encoded import EncodedAnswers
from worklist.models import WorklistItem
from worklist.mwl_matching import MwlQuery

DEFAULT_CHARACTER_SET = "ISO_IR 192"
SPS_SEQUENCE = 0x00400100
# WorklistItem.status as ScheduledProcedureStepStatus (PS3.3 C.4.10 defined terms).
DICOM_STEP_STATUS: dict[str, str] = {
    WorklistItem.Status.SCHEDULED: "SCHEDULED",
    WorklistItem.Status.IN_PROGRESS: "STARTED",
    WorklistItem.Status.COMPLETED: "COMPLETED",
    WorklistItem.Status.DISCONTINUED: "DISCONTINUED",
}
CODING_SCHEME = "CDT"  # ADA Current Dental Terminology (PS3.16)

# Type 2 return keys Nexrel has no value for: present, empty.
EMPTY_TOP = (
    (0x00081110, "SQ"),  # ReferencedStudySequence
    (0x00081120, "SQ"),  # ReferencedPatientSequence
    (0x00080090, "PN"),  # ReferringPhysicianName
    (0x00101030, "DS"),  # PatientWeight
    (0x00102000, "LO"),  # MedicalAlerts
    (0x00102110, "LO"),  # Allergies
    (0x001021C0, "US"),  # PregnancyStatus
    (0x00321032, "PN"),  # RequestingPhysician
    (0x00380010, "LO"),  # AdmissionID
    (0x00380050, "LO"),  # SpecialNeeds
    (0x00380300, "LO"),  # CurrentPatientLocation
    (0x00380500, "LO"),  # PatientState
    (0x00401003, "SH"),  # RequestedProcedurePriority
    (0x00401004, "LO"),  # PatientTransportArrangements
    (0x00403001, "LO"),  # ConfidentialityConstraintOnPatientDataDescription
)
EMPTY_STEP = ((0x00400010, "SH"),)  # ScheduledStationName


def _empty(tag: int, vr: str) -> DataElement:
    return DataElement(tag, vr, [] if vr == "SQ" else None)


def _code_item(code: str, meaning: str) -> Dataset:
    item = Dataset()
    item.add_new(0x00080100, "SH", code)  # CodeValue
    item.add_new(0x00080102, "SH", CODING_SCHEME)  # CodingSchemeDesignator
    item.add_new(0x00080104, "LO", meaning[:64])  # CodeMeaning
    return item


def step_dataset(item: WorklistItem) -> Dataset:
    """The ScheduledProcedureStepSequence item of ``item``."""
    start = timezone.localtime(item.scheduled_start)
    step = Dataset()
    step.add_new(0x00080060, "CS", item.modality)
    step.add_new(0x00400001, "AE", item.scheduled_station_ae_title)
    step.add_new(0x00400002, "DA", start.strftime("%Y%m%d"))
    step.add_new(0x00400003, "TM", start.strftime("%H%M%S"))
    step.add_new(0x00400006, "PN", item.performing_physician)
    step.add_new(0x00400007, "LO", item.step_description)
    step.add_new(0x00400009, "SH", item.scheduled_procedure_step_id)
    # The operatory, when the item follows an appointment (select_items annotates it).
    step.add_new(0x00400011, "SH", (getattr(item, "operatory", None) or "")[:16])
    step.add_new(0x00400020, "CS", DICOM_STEP_STATUS.get(item.status, ""))
    if item.requested_procedure_code:
        code = _code_item(item.requested_procedure_code, item.step_description)
        step.add_new(0x00400008, "SQ", [code])  # ScheduledProtocolCodeSequence
    for tag, vr in EMPTY_STEP:
        step.add(_empty(tag, vr))
    return step


def item_dataset(item: WorklistItem, *, character_set: str = DEFAULT_CHARACTER_SET) -> Dataset:
    """Every return key of ``item``: what a response carries before the query's own keys."""
    ds = Dataset()
    ds.add_new(0x00080005, "CS", character_set)
    ds.add_new(0x00080050, "SH", item.accession_number)
    ds.add_new(0x00100010, "PN", item.patient_name)
    ds.add_new(0x00100020, "LO", item.patient_id)
    birth = item.patient_birth_date
    ds.add_new(0x00100030, "DA", birth.strftime("%Y%m%d") if birth else "")
    ds.add_new(0x00100040, "CS", item.patient_sex)
    ds.add_new(0x0020000D, "UI", item.study_instance_uid)
    ds.add_new(0x00321060, "LO", item.step_description)  # RequestedProcedureDescription
    if item.requested_procedure_code:
        code = _code_item(item.requested_procedure_code, item.step_description)
        ds.add_new(0x00321064, "SQ", [code])  # RequestedProcedureCodeSequence
    ds.add_new(0x00401001, "SH", item.requested_procedure_id)
    for tag, vr in EMPTY_TOP:
        ds.add(_empty(tag, vr))
    ds.add_new(SPS_SEQUENCE, "SQ", [step_dataset(item)])
    return ds


def build_response(item: WorklistItem, query: MwlQuery, *, character_set: str) -> Dataset:
    """``item_dataset`` plus the query's other keys, empty (PS3.4 C.2.2.1.2)."""
    ds = item_dataset(item, character_set=character_set)
    for tag, vr in query.top_keys:
        if tag not in ds:
            ds.add(_empty(tag, vr))
    step = ds[SPS_SEQUENCE].value[0]
    for tag, vr in query.step_keys:
        if tag not in step:
            step.add(_empty(tag, vr))
    return ds


# Every WorklistItem attribute a response is built from (plus the annotated operatory).
ANSWER_FIELDS = (
    "pk", "accession_number", "patient_name", "patient_id", "patient_birth_date",
    "patient_sex", "study_instance_uid", "step_description", "requested_procedure_code",
    "requested_procedure_id", "modality", "scheduled_station_ae_title", "scheduled_start",
    "performing_physician", "scheduled_procedure_step_id", "status", "operatory",
)  # fmt: skip
CACHE_SIZE = 4096
_answers = EncodedAnswers(CACHE_SIZE)


def encoded_response(
    item: WorklistItem,
    *,
    query: MwlQuery,
    character_set: str,
    implicit_vr: bool = True,
    little_endian: bool = True,
) -> Dataset:
    """``build_response`` as raw elements in the given encoding (module docstring).

    The key holds every input of the answer (``dicomnet.dimse.encoded``), so an edited item
    or another query shape is encoded afresh.
    """
    answer = tuple(getattr(item, name, None) for name in ANSWER_FIELDS)
    return _answers.get(
        (answer, character_set, query.top_keys, query.step_keys),
        lambda: build_response(item, query, character_set=character_set),
        implicit_vr=implicit_vr,
        little_endian=little_endian,
    )
