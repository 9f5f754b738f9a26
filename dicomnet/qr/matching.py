"""Query/Retrieve matching (PS3.4 C.2.2.2): an identifier becomes filters on the archive.

Single value, list of UIDs, wildcard (``*``, ``?``), date and time range and universal
matching become ORM filters on DicomStudy, DicomSeries and DicomInstance, always scoped to
the practice. The same filters serve C-FIND (every level) and C-MOVE/C-GET (the instances
under the matches). Beyond the standard:
- PatientName is matched accent- and case-insensitively on ``normalise_name`` ("cote*" and
  "CÔTÉ*" find "Côté^Zoé"); without wildcards a family name alone matches the family name.
  DicomStudy has no folded name column, so the practice's names (already narrowed by the
  other keys) are scanned here, each distinct name folded once per process.
- ModalitiesInStudy matches when any listed modality is one of the study's.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from pydicom import Dataset
from pydicom.multival import MultiValue

from dicomnet.models import DicomInstance, DicomSeries, DicomStudy
from patients.names import normalise_name, split_person_name, strip_accents

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
_WILDCARD = re.compile(r"[*?]")
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")
_SEPARATORS = re.compile(r"[\^\-_,.'’\s]+")
_PARTICLES = {"st": "saint", "ste": "sainte"}

# Keys matched as strings, per level: keyword -> field (relative to that level's model).
PATIENT_STRING_KEYS = {"PatientID": "patient_id", "PatientSex": "patient_sex"}
STUDY_STRING_KEYS = {
    "StudyInstanceUID": "study_instance_uid",
    "AccessionNumber": "accession_number",
    "StudyDescription": "study_description",
}
SERIES_STRING_KEYS = {
    "SeriesInstanceUID": "series_instance_uid",
    "Modality": "modality",
    "SeriesDescription": "series_description",
    "BodyPartExamined": "body_part_examined",
}
IMAGE_STRING_KEYS = {"SOPInstanceUID": "sop_instance_uid", "SOPClassUID": "sop_class_uid"}

# A filter is built for a model path prefix ("", "study__", "series__").
Filter = Callable[[str], Q]


class MalformedIdentifier(ValueError):
    """The identifier can't be decoded, or a key's value breaks its VR or the model."""


@dataclass(frozen=True)
class QrQuery:
    level: str
    patient: tuple[Filter, ...] = ()  # on DicomStudy (patient attributes live there)
    study: tuple[Filter, ...] = ()
    series: tuple[Filter, ...] = ()
    image: tuple[Filter, ...] = ()
    name_check: Callable[[str], bool] | None = None
    name_prefilter: Filter | None = None  # a coarse database filter for ``name_check``
    # Attributes asked for, as (tag, VR), in the order asked.
    keys: tuple[tuple[int, str], ...] = field(default=())

    def study_q(self, prefix: str = "") -> Q:
        return _all(f(prefix) for f in self.patient + self.study)


def _all(qs) -> Q:
    return functools.reduce(operator.and_, qs, Q())


# ---------------------------------------------------------------------- value parsing


def _values(identifier: Dataset, keyword: str) -> list[str]:
    """The key's values as strings; [] for universal matching (absent, empty or "*")."""
    if keyword not in identifier:
        return []
    try:
        value = identifier[keyword].value
    except Exception as exc:
        raise MalformedIdentifier(f"{keyword} can't be decoded: {exc}") from exc
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, MultiValue | list) else [value]
    out = [str(v).strip() for v in items]
    out = [v for v in out if v]
    return [] if out == ["*"] else out


def string_filter(path: str, values: list[str]) -> Filter:
    """Single value, list of values (UIDs) or wildcard, as a filter on ``path``."""
    if len(values) > 1:
        return lambda prefix: Q(**{f"{prefix}{path}__in": values})
    (value,) = values
    if not _WILDCARD.search(value):
        return lambda prefix: Q(**{f"{prefix}{path}": value})
    if value.endswith("*") and not _WILDCARD.search(value[:-1]):
        return lambda prefix: Q(**{f"{prefix}{path}__startswith": value[:-1]})
    regex = "^" + "".join(_wild_char(ch) for ch in value) + "$"
    return lambda prefix: Q(**{f"{prefix}{path}__regex": regex})


def _wild_char(ch: str) -> str:
    return {"*": ".*", "?": "."}.get(ch, re.escape(ch))


def parse_date(value: str, keyword: str) -> dt.date:
    if not _DATE.fullmatch(value):
        raise MalformedIdentifier(f"{keyword} {value!r} is not a DICOM date (YYYYMMDD)")
    try:
        return dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError as exc:
        raise MalformedIdentifier(f"{keyword} {value!r} is not a date") from exc


def parse_time(value: str, keyword: str, *, end: bool = False) -> dt.time:
    match = _TIME.fullmatch(value.replace(":", ""))
    if not match:
        raise MalformedIdentifier(f"{keyword} {value!r} is not a DICOM time (HHMMSS)")
    hh, mm, ss, frac = match.groups()
    fill = "59" if end else "00"
    try:
        micro = int((frac or ("999999" if end and ss is None else "0")).ljust(6, "0"))
        return dt.time(int(hh), int(mm or fill), int(ss or fill), micro)
    except ValueError as exc:
        raise MalformedIdentifier(f"{keyword} {value!r} is not a time") from exc


def range_filter(path: str, value: str, keyword: str, parse) -> Filter:
    """``A``, ``A-B``, ``A-`` or ``-B`` (PS3.4 C.2.2.2.5) on a date or time field."""
    if "-" not in value:
        if parse is parse_date:
            exact = parse(value, keyword)
            return lambda prefix: Q(**{f"{prefix}{path}": exact})
        low, high = parse(value, keyword), parse(value, keyword, end=True)
        return lambda prefix: Q(**{f"{prefix}{path}__range": (low, high)})
    start, _, stop = value.partition("-")
    q_parts: list[tuple[str, object]] = []
    if start.strip():
        q_parts.append(("gte", parse(start.strip(), keyword)))
    if stop.strip():
        kwargs = {"end": True} if parse is parse_time else {}
        q_parts.append(("lte", parse(stop.strip(), keyword, **kwargs)))
    if not q_parts:
        raise MalformedIdentifier(f"{keyword} {value!r} is an empty range")
    return lambda prefix: _all(Q(**{f"{prefix}{path}__{op}": v}) for op, v in q_parts)


def modalities_filter(values: list[str]) -> Filter:
    """Any listed modality among the study's (``modality`` is backslash-joined)."""

    def build(prefix: str) -> Q:
        f = f"{prefix}modality"
        qs = []
        for m in values:
            qs += [
                Q(**{f: m}),
                Q(**{f"{f}__startswith": m + "\\"}),
                Q(**{f"{f}__endswith": "\\" + m}),
                Q(**{f"{f}__contains": "\\" + m + "\\"}),
            ]
        return functools.reduce(operator.or_, qs)

    return build


def int_filter(path: str, values: list[str], keyword: str) -> Filter:
    try:
        numbers = [int(v) for v in values]
    except ValueError as exc:
        raise MalformedIdentifier(f"{keyword} {values!r} is not an integer") from exc
    return lambda prefix: Q(**{f"{prefix}{path}__in": numbers})


# ---------------------------------------------------------------------- person names


def _fold_pattern(value: str) -> str:
    folded = strip_accents(value.split("=")[0]).casefold()
    tokens = [t for t in _SEPARATORS.split(folded) if t]
    return " ".join(_PARTICLES.get(t, t) for t in tokens)


@functools.lru_cache(maxsize=262_144)
def folded_name(stored: str) -> str:
    return normalise_name(stored.split("=")[0])


@functools.lru_cache(maxsize=262_144)
def folded_family(stored: str) -> str:
    return normalise_name(split_person_name(stored)[0])


def name_matcher(value: str) -> Callable[[str], bool] | None:
    """A check on a stored PN for the PatientName key ``value`` (None: universal)."""
    pattern = _fold_pattern(value)
    if not pattern or pattern.strip("*") == "":
        return None
    if _WILDCARD.search(pattern):
        regex = re.compile("".join(_wild_char(ch) for ch in pattern), re.DOTALL)
        # "cote*" also reaches "cote zoe": the folded space stands for "^".
        return lambda stored: regex.fullmatch(folded_name(stored)) is not None
    family_only = "^" not in value
    return lambda stored: (
        folded_name(stored) == pattern or (family_only and folded_family(stored) == pattern)
    )


def name_key_filter(value: str) -> Filter | None:
    """Names that can match ``value``: an index range on the stored folded name.

    The folded pattern's literal start (before any wildcard) bounds ``patient_name_key``
    from below and above, which both SQLite and PostgreSQL answer from the (practice,
    patient_name_key) index; ``name_matcher`` then decides exactly.
    """
    literal = _WILDCARD.split(_fold_pattern(value), maxsplit=1)[0]
    if not literal:
        return None
    above = literal[:-1] + chr(ord(literal[-1]) + 1)

    def build(prefix: str) -> Q:
        field_name = f"{prefix}patient_name_key"
        return Q(**{f"{field_name}__gte": literal, f"{field_name}__lt": above})

    return build


# ---------------------------------------------------------------------- identifiers


def parse_identifier(identifier: Dataset, *, patient_root: bool) -> QrQuery:
    """The C-FIND/C-MOVE/C-GET identifier as a QrQuery; MalformedIdentifier when unusable."""
    level = "".join(_values(identifier, "QueryRetrieveLevel")).upper()
    if level not in LEVELS:
        raise MalformedIdentifier(f"QueryRetrieveLevel {level or '(missing)'!r} is not a level")
    if level == "PATIENT" and not patient_root:
        raise MalformedIdentifier("the Study Root model has no PATIENT level")
    patient: list[Filter] = []
    study: list[Filter] = []
    series: list[Filter] = []
    image: list[Filter] = []
    for keyword, path in PATIENT_STRING_KEYS.items():
        if values := _values(identifier, keyword):
            patient.append(string_filter(path, values))
    if values := _values(identifier, "PatientBirthDate"):
        patient.append(
            range_filter("patient_birth_date", values[0], "PatientBirthDate", parse_date)
        )
    for keyword, path in STUDY_STRING_KEYS.items():
        if values := _values(identifier, keyword):
            study.append(string_filter(path, values))
    if values := _values(identifier, "StudyDate"):
        study.append(range_filter("study_date", values[0], "StudyDate", parse_date))
    if values := _values(identifier, "StudyTime"):
        study.append(range_filter("study_time", values[0], "StudyTime", parse_time))
    if values := _values(identifier, "ModalitiesInStudy"):
        study.append(modalities_filter(values))
    for keyword, path in SERIES_STRING_KEYS.items():
        if values := _values(identifier, keyword):
            series.append(string_filter(path, values))
    if values := _values(identifier, "SeriesNumber"):
        series.append(int_filter("series_number", values, "SeriesNumber"))
    for keyword, path in IMAGE_STRING_KEYS.items():
        if values := _values(identifier, keyword):
            image.append(string_filter(path, values))
    if values := _values(identifier, "InstanceNumber"):
        image.append(int_filter("instance_number", values, "InstanceNumber"))
    name_check = name_prefilter = None
    if values := _values(identifier, "PatientName"):
        name_check = name_matcher(values[0])
        name_prefilter = name_key_filter(values[0]) if name_check else None
    keys = tuple(
        (elem.tag, elem.VR)
        for elem in identifier
        if elem.tag not in (0x00080005, 0x00080052) and elem.tag.element != 0
    )
    return QrQuery(
        level=level,
        patient=tuple(patient),
        study=tuple(study),
        series=tuple(series),
        image=tuple(image),
        name_check=name_check,
        name_prefilter=name_prefilter,
        keys=keys,
    )


# ---------------------------------------------------------------------- selection


BATCH = 2000  # study ids per query: far below any database's bound-parameter limit


def matching_study_ids(query: QrQuery, *, practice_id: int) -> list[int]:
    """Ids of the practice's studies whose PatientName passes ``query.name_check``.

    The database narrows first (the other keys, then an index range on the folded name);
    the remaining names are matched exactly here.
    """
    studies = DicomStudy.objects.filter(practice_id=practice_id).filter(query.study_q())
    if query.name_prefilter is not None:
        studies = studies.filter(query.name_prefilter(""))
    check = query.name_check or (lambda name: True)
    rows = studies.order_by("pk").values_list("pk", "patient_name")
    return [pk for pk, name in rows.iterator(chunk_size=BATCH) if check(name)]


def study_scopes(query: QrQuery, *, practice_id: int, prefix: str = "") -> Iterator[Q]:
    """Filters that together select the matching studies, as seen from ``prefix``'s model."""
    if query.name_check is None:
        yield query.study_q(prefix)
        return
    ids = matching_study_ids(query, practice_id=practice_id)
    for start in range(0, len(ids), BATCH):
        yield Q(**{f"{prefix}id__in": ids[start : start + BATCH]})


def matching_studies(query: QrQuery, *, practice_id: int) -> Iterator[QuerySet[DicomStudy]]:
    for scope in study_scopes(query, practice_id=practice_id):
        yield DicomStudy.objects.filter(practice_id=practice_id).filter(scope).order_by("pk")


def matching_series(query: QrQuery, *, practice_id: int) -> Iterator[QuerySet[DicomSeries]]:
    for scope in study_scopes(query, practice_id=practice_id, prefix="study__"):
        yield (
            DicomSeries.objects.filter(practice_id=practice_id)
            .filter(scope)
            .filter(_all(f("") for f in query.series))
            .order_by("pk")
        )


def matching_instances(query: QrQuery, *, practice_id: int) -> list[DicomInstance]:
    """The processed instances under the matches, the latest version of each SOP instance."""
    latest: dict[str, DicomInstance] = {}
    for scope in study_scopes(query, practice_id=practice_id, prefix="study__"):
        rows = (
            DicomInstance.objects.filter(
                practice_id=practice_id, state=DicomInstance.State.PROCESSED, series__isnull=False
            )
            .filter(scope)
            .filter(_all(f("series__") for f in query.series))
            .filter(_all(f("") for f in query.image))
            .select_related("study", "series")
            .order_by("series_id", "instance_number", "version")
        )
        for instance in rows:
            latest[instance.sop_instance_uid] = instance  # ordered by version: last wins
    return list(latest.values())
