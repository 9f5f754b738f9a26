"""MWL C-FIND matching (PS3.4 Annex K): an identifier becomes filters on WorklistItem.

Single value, list of values, wildcard (``*``, ``?``), date and time range and universal
matching, translated into ORM filters that the indexes on (practice, scheduled_start) and
(practice, station, scheduled_start) serve. Beyond the standard:
- PatientName is matched on ``patient_name_key``, accent- and case-insensitively ("cote*" and
  "CÔTÉ*" find "Côté^Zoé"). Without wildcards a value with a given name must equal the whole
  name ("Côté^Zoé"); a family name alone must equal the family name ("COTE" finds
  "Côté^Zoé", "Saint" does not find "Saint-Pierre^François").
- An empty ScheduledProcedureStepStatus is a return key: the default statuses (SCHEDULED,
  IN_PROGRESS) apply. "*" asks for every status.
- A device with the own-station quirk (``mwl_own_station_only``) that sends no station AE
  title gets only the items scheduled on its own AE title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import F, Q
from django.utils import timezone
from pydicom import Dataset
from pydicom.sequence import Sequence

from dicomnet.dimse import matching as dimse
from dicomnet.dimse.matching import MalformedIdentifier
from dicomnet.models import DicomServer
from worklist.models import WorklistItem

__all__ = ["MalformedIdentifier", "MwlQuery", "parse_identifier", "select_items"]

# Top-level and ScheduledProcedureStepSequence keys matched as strings (single value, list of
# values, wildcards), and the WorklistItem field each one is matched against.
TOP_STRING_KEYS = {
    "PatientID": "patient_id",
    "AccessionNumber": "accession_number",
    "RequestedProcedureID": "requested_procedure_id",
    "StudyInstanceUID": "study_instance_uid",
    "PatientSex": "patient_sex",
}
STEP_STRING_KEYS = {
    "Modality": "modality",
    "ScheduledStationAETitle": "scheduled_station_ae_title",
    "ScheduledProcedureStepID": "scheduled_procedure_step_id",
    "ScheduledPerformingPhysicianName": "performing_physician",
}
ACTIVE = (WorklistItem.Status.SCHEDULED, WorklistItem.Status.IN_PROGRESS)
# ScheduledProcedureStepStatus terms (PS3.3 C.4.10) and other spellings devices send.
STEP_STATUS_TERMS = {
    "SCHEDULED": WorklistItem.Status.SCHEDULED,
    "STARTED": WorklistItem.Status.IN_PROGRESS,
    "IN PROGRESS": WorklistItem.Status.IN_PROGRESS,
    "IN_PROGRESS": WorklistItem.Status.IN_PROGRESS,
    "COMPLETED": WorklistItem.Status.COMPLETED,
    "DISCONTINUED": WorklistItem.Status.DISCONTINUED,
    "CANCELED": WorklistItem.Status.DISCONTINUED,
}


@dataclass(frozen=True)
class MwlQuery:
    filters: Q
    station_given: bool = False
    # The exact PatientName check on WorklistItem.patient_name, after ``filters`` narrowed.
    name_check: dimse.PersonNameMatch | None = None
    # Attributes asked for, as (tag, VR): answered even when Nexrel holds no value for them.
    top_keys: tuple[tuple[int, str], ...] = ()
    step_keys: tuple[tuple[int, str], ...] = ()
    statuses: tuple[str, ...] = ACTIVE


# ------------------------------------------------------------------------ identifier → query


def parse_identifier(identifier: Dataset) -> MwlQuery:
    """Translate an MWL C-FIND identifier into filters on WorklistItem (see module docstring)."""
    try:
        return _parse(identifier)
    except MalformedIdentifier:
        raise
    except Exception as exc:  # pydicom decoding a bad value or a bad sequence
        raise MalformedIdentifier(f"undecodable identifier: {exc}") from exc


def _parse(ds: Dataset) -> MwlQuery:
    step = _step_item(ds)
    filters = Q()
    for keyword, field_name in TOP_STRING_KEYS.items():
        filters &= dimse.string_q(field_name, dimse.values(ds, keyword))
    for keyword, field_name in STEP_STRING_KEYS.items():
        filters &= dimse.string_q(field_name, dimse.values(step, keyword))
    name = dimse.single(ds, "PatientName")
    name_check = dimse.person_name_match(name) if name else None
    if name_check is not None:
        filters &= name_check.key_q("patient_name_key")
    filters &= dimse.range_q(
        "patient_birth_date", dimse.single(ds, "PatientBirthDate"), dimse.date_range
    )
    filters &= _start_q(
        dimse.single(step, "ScheduledProcedureStepStartDate"),
        dimse.single(step, "ScheduledProcedureStepStartTime"),
    )
    statuses = _statuses(dimse.values(step, "ScheduledProcedureStepStatus", keep_star=True))
    station = dimse.values(step, "ScheduledStationAETitle")
    return MwlQuery(
        filters=filters & Q(status__in=statuses),
        station_given=bool(station),
        name_check=name_check,
        top_keys=_keys(ds),
        step_keys=_keys(step),
        statuses=statuses,
    )


def _keys(ds: Dataset) -> tuple[tuple[int, str], ...]:
    return tuple((int(e.tag), e.VR) for e in ds if e.tag.element != 0)  # no group lengths


def _step_item(ds: Dataset) -> Dataset:
    if "ScheduledProcedureStepSequence" not in ds:
        return Dataset()
    element = ds["ScheduledProcedureStepSequence"]
    if element.VR != "SQ" or not isinstance(element.value, Sequence):
        raise MalformedIdentifier("ScheduledProcedureStepSequence is not a sequence")
    if len(element.value) > 1:
        # PS3.4 C.2.2.2.6: a sequence key holds a single item.
        raise MalformedIdentifier("ScheduledProcedureStepSequence has more than one item")
    return element.value[0] if len(element.value) else Dataset()


def _start_q(date_text: str, time_text: str) -> Q:
    """ScheduledProcedureStepStartDate/Time, in local time (TIME_ZONE).

    With a date the range is one of date-times (``dimse.date_time_range``). A time alone
    matches the time of day on any date.
    """
    if not date_text:
        return dimse.range_q("scheduled_start__time", time_text, dimse.time_range)
    low, high = dimse.date_time_range(date_text, time_text, timezone.get_current_timezone())
    return dimse.bounds_q("scheduled_start", low, high)


def _statuses(values: list[str]) -> tuple[str, ...]:
    if not values:
        return ACTIVE
    wanted: set[str] = set()
    for value in values:
        regex = re.compile(f"^{dimse.wildcard_regex(value.upper())}$")
        wanted.update(ours for term, ours in STEP_STATUS_TERMS.items() if regex.match(term))
    return tuple(sorted(wanted))


# ------------------------------------------------------------------------- query → items


def select_items(
    query: MwlQuery, *, practice_id: int, device: DicomServer | None
) -> list[WorklistItem]:
    """The practice's items matching ``query``, in scheduled order."""
    items = WorklistItem.objects.for_practice(practice_id).filter(query.filters)
    if device is not None and device.mwl_own_station_only and not query.station_given:
        items = items.filter(scheduled_station_ae_title=device.ae_title)
    items = items.annotate(operatory=F("appointment__operatory")).order_by("scheduled_start", "pk")
    found: list[WorklistItem] = list(items)
    if query.name_check is not None:
        found = [item for item in found if query.name_check(item.patient_name)]
    return found
