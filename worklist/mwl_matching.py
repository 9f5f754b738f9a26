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

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import F, Q
from django.utils import timezone
from pydicom import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dicomnet.models import DicomServer
from patients.names import normalise_name, split_person_name
from worklist.models import WorklistItem

_WILDCARD = re.compile(r"[*?]")
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")

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


class MalformedIdentifier(ValueError):
    """The identifier can't be decoded, or a key's value breaks its VR or Annex K."""


@dataclass(frozen=True)
class MwlQuery:
    filters: Q
    station_given: bool = False
    # A check on WorklistItem.patient_name the database can't express (family name only).
    name_check: Callable[[str], bool] | None = None
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
        filters &= _string_q(field_name, _values(ds, keyword))
    for keyword, field_name in STEP_STRING_KEYS.items():
        filters &= _string_q(field_name, _values(step, keyword))
    name_q, name_check = _patient_name_q(_values(ds, "PatientName"))
    filters &= name_q
    birth = _single(ds, "PatientBirthDate")
    if birth:
        low, high = _range(birth, _parse_date)
        filters &= _bounds_q("patient_birth_date", low, high)
    filters &= _start_q(
        _single(step, "ScheduledProcedureStepStartDate"),
        _single(step, "ScheduledProcedureStepStartTime"),
    )
    statuses = _statuses(_values(step, "ScheduledProcedureStepStatus"))
    station = _values(step, "ScheduledStationAETitle")
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


def _values(ds: Dataset, keyword: str) -> list[str]:
    """The key's values as stripped strings; [] for an absent or empty key."""
    if keyword not in ds:
        return []
    element = ds[keyword]
    if element.VR == "SQ":
        raise MalformedIdentifier(f"{keyword} is a sequence")
    value = element.value
    if value is None or value == "":
        return []
    values = list(value) if isinstance(value, MultiValue) else [value]
    texts = []
    for v in values:
        if isinstance(v, bytes):
            raise MalformedIdentifier(f"{keyword} has an undecodable value")
        texts.append(str(v).strip())
    return [t for t in texts if t]


def _single(ds: Dataset, keyword: str) -> str:
    values = _values(ds, keyword)
    if len(values) > 1:
        raise MalformedIdentifier(f"{keyword} takes a single value or a range")
    return values[0] if values else ""


def _wildcard_regex(pattern: str) -> str:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return "^" + "".join(parts) + "$"


def _string_q(field_name: str, values: list[str]) -> Q:
    """Single value, list of values (backslash) and wildcard matching; [] or "*" match all."""
    if not values or "*" in values:
        return Q()
    alternatives = [
        Q(**{f"{field_name}__regex": _wildcard_regex(v)})
        if _WILDCARD.search(v)
        else Q(**{field_name: v})
        for v in values
    ]
    return functools.reduce(operator.or_, alternatives)


def _patient_name_q(values: list[str]) -> tuple[Q, Callable[[str], bool] | None]:
    """PatientName on ``patient_name_key``: case- and accent-insensitive (module docstring)."""
    if not values:
        return Q(), None
    alphabetic = values[0].split("=")[0]  # ideographic and phonetic groups are not matched
    pattern = normalise_name(alphabetic)
    if set(pattern) <= {"*", " "}:
        return Q(), None
    if _WILDCARD.search(pattern):
        regex = _wildcard_regex(pattern)
        # "Côté^*" also finds a patient without a given name, "*^Zoé" one without a family.
        space_any, any_space = re.escape(" ") + ".*$", "^.*" + re.escape(" ")
        if regex.endswith(space_any):
            regex = regex[: -len(space_any)] + f"({re.escape(' ')}.*)?$"
        if regex.startswith(any_space):
            regex = f"^(.*{re.escape(' ')})?" + regex[len(any_space) :]
        return Q(patient_name_key__regex=regex), None
    family, given = split_person_name(alphabetic)
    if given or alphabetic.strip("^ ").count("^"):
        return Q(patient_name_key=pattern), None

    def same_family(patient_name: str) -> bool:
        return normalise_name(split_person_name(patient_name)[0]) == pattern

    q = Q(patient_name_key=pattern) | Q(patient_name_key__startswith=pattern + " ")
    return q, same_family


def _parse_date(text: str) -> dt.date:
    if not _DATE.fullmatch(text):
        raise MalformedIdentifier(f"{text!r} is not a DICOM date (YYYYMMDD)")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise MalformedIdentifier(f"{text!r} is not a valid date") from None


def _time_bounds(text: str) -> tuple[dt.time, dt.time]:
    """The first and last instant a DICOM time denotes: "08" is 08:00:00 to 08:59:59.999999."""
    match = _TIME.fullmatch(text.replace(":", ""))  # ACR-NEMA style "08:30" is still seen
    if not match:
        raise MalformedIdentifier(f"{text!r} is not a DICOM time (HHMMSS.FFFFFF)")
    hours, minutes, seconds, fraction = match.groups()
    try:
        low = dt.time(
            int(hours),
            int(minutes or 0),
            min(int(seconds or 0), 59),  # a leap second
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        raise MalformedIdentifier(f"{text!r} is not a valid time") from None
    if minutes is None:
        return low, low.replace(minute=59, second=59, microsecond=999_999)
    if seconds is None:
        return low, low.replace(second=59, microsecond=999_999)
    step = 10 ** (6 - len(fraction)) if fraction else 1_000_000
    return low, low.replace(microsecond=low.microsecond + step - 1)


def _range(text: str, parse: Callable[[str], object]) -> tuple:
    """ "A", "A-B", "-B" or "A-" into (low, high); None for an open end."""
    if "-" not in text:
        value = parse(text)
        return value, value
    low, _, high = text.partition("-")
    if "-" in high or not (low or high):
        raise MalformedIdentifier(f"{text!r} is neither a single value nor a range (A-B, -B, A-)")
    return (parse(low) if low else None), (parse(high) if high else None)


def _bounds_q(field_name: str, low, high) -> Q:
    q = Q()
    if low is not None:
        q &= Q(**{f"{field_name}__gte": low})
    if high is not None:
        q &= Q(**{f"{field_name}__lte": high})
    return q


def _start_q(date_text: str, time_text: str) -> Q:
    """ScheduledProcedureStepStartDate/Time, in local time (TIME_ZONE).

    With both, the range is one of date-times (PS3.4 C.2.2.2.5.2): "20260105-20260107" and
    "1000-1800" run from 10:00 on the 5th to 18:00 on the 7th. A time alone matches the time
    of day on any date.
    """
    if not date_text and not time_text:
        return Q()
    times = _range(time_text, _time_bounds) if time_text else (None, None)
    time_low = times[0][0] if times[0] else None
    time_high = times[1][1] if times[1] else None
    if not date_text:
        return _bounds_q("scheduled_start__time", time_low, time_high)
    date_low, date_high = _range(date_text, _parse_date)
    zone = timezone.get_current_timezone()
    low = high = None
    if date_low is not None:
        low = timezone.make_aware(dt.datetime.combine(date_low, time_low or dt.time.min), zone)
    if date_high is not None:
        high = timezone.make_aware(dt.datetime.combine(date_high, time_high or dt.time.max), zone)
    return _bounds_q("scheduled_start", low, high)


def _statuses(values: list[str]) -> tuple[str, ...]:
    if not values:
        return ACTIVE
    wanted: set[str] = set()
    for value in values:
        regex = re.compile(_wildcard_regex(value.upper()))
        wanted.update(ours for term, ours in STEP_STATUS_TERMS.items() if regex.match(term))
    return tuple(sorted(wanted))


# ------------------------------------------------------------------------- query → items


def select_items(
    query: MwlQuery, *, practice_id: int, device: DicomServer | None
) -> list[WorklistItem]:
    """The practice's items matching ``query``, in scheduled order."""
    items = WorklistItem.objects.filter(query.filters, practice_id=practice_id)
    if device is not None and device.mwl_own_station_only and not query.station_given:
        items = items.filter(scheduled_station_ae_title=device.ae_title)
    items = items.annotate(operatory=F("appointment__operatory")).order_by("scheduled_start", "pk")
    found = list(items)
    if query.name_check is not None:
        found = [item for item in found if query.name_check(item.patient_name)]
    return found
