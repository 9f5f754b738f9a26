"""Query/Retrieve matching (PS3.4 C.2.2.2): an identifier becomes filters on the archive.

The keys each level answers, and the field each one is matched on, are this module's; the
matching itself (single value, list, wildcard, date and time ranges, universal matching,
PatientName folding) is ``dicomnet.dimse.matching``'s, shared with the worklist SCP. The
same filters serve C-FIND (every level) and C-MOVE/C-GET (the instances under the
matches), always scoped to the practice. PatientName is narrowed in the database by an
index range on ``patient_name_key``, then decided exactly on the stored names.
ModalitiesInStudy matches when any listed modality is one of the study's.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from pydicom import Dataset

from dicomnet.dimse import matching as dimse
from dicomnet.dimse.matching import MalformedIdentifier
from dicomnet.models import DicomInstance, DicomSeries, DicomStudy

__all__ = ["MalformedIdentifier", "QrQuery", "parse_identifier"]

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")

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
# Keys matched as ranges: keyword -> (field, parser).
PATIENT_RANGE_KEYS = {"PatientBirthDate": ("patient_birth_date", dimse.date_range)}
STUDY_RANGE_KEYS = {
    "StudyDate": ("study_date", dimse.date_range),
    "StudyTime": ("study_time", dimse.time_range),
}

# A filter is built for a model path prefix ("", "study__", "series__").
Filter = Callable[[str], Q]


@dataclass(frozen=True)
class QrQuery:
    level: str
    patient: tuple[Filter, ...] = ()  # on DicomStudy (patient attributes live there)
    study: tuple[Filter, ...] = ()
    series: tuple[Filter, ...] = ()
    image: tuple[Filter, ...] = ()
    name_check: dimse.PersonNameMatch | None = None
    # Attributes asked for, as (tag, VR), in the order asked.
    keys: tuple[tuple[int, str], ...] = field(default=())

    def study_q(self, prefix: str = "") -> Q:
        return _all(f(prefix) for f in self.patient + self.study)


def _all(qs: Iterable[Q]) -> Q:
    return functools.reduce(operator.and_, qs, Q())


def _on(build: Callable[..., Q], path: str, *args: object) -> Filter:
    """A filter that builds ``build(field, *args)`` on ``path`` seen from a model prefix."""
    return lambda prefix: build(prefix + path, *args)


def _strings(identifier: Dataset, table: dict[str, str]) -> list[Filter]:
    filters: list[Filter] = []
    for keyword, path in table.items():
        if found := dimse.values(identifier, keyword):
            filters.append(_on(dimse.string_q, path, found))
    return filters


def _ranges(identifier: Dataset, table: dict[str, tuple[str, Callable]]) -> list[Filter]:
    filters: list[Filter] = []
    for keyword, (path, parse) in table.items():
        if text := dimse.single(identifier, keyword):
            try:
                low, high = parse(text)
            except MalformedIdentifier as exc:
                raise MalformedIdentifier(f"{keyword}: {exc}") from exc
            filters.append(_on(dimse.bounds_q, path, low, high))
    return filters


def _ints(identifier: Dataset, keyword: str, path: str) -> list[Filter]:
    if not (found := dimse.values(identifier, keyword)):
        return []
    dimse.int_q(path, found, keyword)  # refuse a bad value now, not when the filter is used
    return [_on(dimse.int_q, path, found, keyword)]


# ---------------------------------------------------------------------- identifiers


def parse_identifier(identifier: Dataset, *, patient_root: bool) -> QrQuery:
    """The C-FIND/C-MOVE/C-GET identifier as a QrQuery; MalformedIdentifier when unusable."""
    level = "".join(dimse.values(identifier, "QueryRetrieveLevel")).upper()
    if level not in LEVELS:
        raise MalformedIdentifier(f"QueryRetrieveLevel {level or '(missing)'!r} is not a level")
    if level == "PATIENT" and not patient_root:
        raise MalformedIdentifier("the Study Root model has no PATIENT level")
    study = _strings(identifier, STUDY_STRING_KEYS) + _ranges(identifier, STUDY_RANGE_KEYS)
    if modalities := dimse.values(identifier, "ModalitiesInStudy"):
        study.append(_on(dimse.multivalued_field_q, "modality", modalities))
    name = dimse.single(identifier, "PatientName")
    name_check = dimse.person_name_match(name) if name else None
    keys = tuple(
        (elem.tag, elem.VR)
        for elem in identifier
        if elem.tag not in (0x00080005, 0x00080052) and elem.tag.element != 0
    )
    return QrQuery(
        level=level,
        patient=tuple(
            _strings(identifier, PATIENT_STRING_KEYS) + _ranges(identifier, PATIENT_RANGE_KEYS)
        ),
        study=tuple(study),
        series=tuple(
            _strings(identifier, SERIES_STRING_KEYS)
            + _ints(identifier, "SeriesNumber", "series_number")
        ),
        image=tuple(
            _strings(identifier, IMAGE_STRING_KEYS)
            + _ints(identifier, "InstanceNumber", "instance_number")
        ),
        name_check=name_check,
        keys=keys,
    )


# ---------------------------------------------------------------------- selection


BATCH = 2000  # study ids per query: far below any database's bound-parameter limit


def matching_study_ids(query: QrQuery, *, practice_id: int) -> list[int]:
    """Ids of the practice's studies whose PatientName passes ``query.name_check``.

    The database narrows first (the other keys, then an index range on the folded name);
    the remaining names are matched exactly here.
    """
    studies = DicomStudy.objects.for_practice(practice_id).filter(query.study_q())
    if query.name_check is not None:
        studies = studies.filter(query.name_check.key_q("patient_name_key"))
    check = query.name_check or (lambda name: True)
    rows = studies.order_by("pk").values_list("pk", "patient_name")
    return [pk for pk, name in rows.iterator(chunk_size=BATCH) if check(name)]


def matching_study_rows(
    query: QrQuery, *, practice_id: int, fields: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    """The practice's matching studies as ``values(*fields)`` rows, in pk order, each read
    and decided as it comes: one query, streamed (``fields`` must hold ``patient_name``).

    The database narrows on the other keys and the folded-name index range; the name is
    decided here, on each row, as ``matching_study_ids`` does.
    """
    studies = DicomStudy.objects.for_practice(practice_id).filter(query.study_q())
    if query.name_check is None:
        yield from studies.order_by("pk").values(*fields).iterator(chunk_size=BATCH)
        return
    check = query.name_check
    studies = studies.filter(check.key_q("patient_name_key"))
    for row in studies.order_by("pk").values(*fields).iterator(chunk_size=BATCH):
        if check(row["patient_name"]):
            yield row


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
        yield DicomStudy.objects.for_practice(practice_id).filter(scope).order_by("pk")


def matching_series(query: QrQuery, *, practice_id: int) -> Iterator[QuerySet[DicomSeries]]:
    for scope in study_scopes(query, practice_id=practice_id, prefix="study__"):
        yield (
            DicomSeries.objects.for_practice(practice_id)
            .filter(scope)
            .filter(_all(f("") for f in query.series))
            .order_by("pk")
        )


def matching_instances(query: QrQuery, *, practice_id: int) -> list[DicomInstance]:
    """The processed instances under the matches, the latest version of each SOP instance."""
    latest: dict[str, DicomInstance] = {}
    for scope in study_scopes(query, practice_id=practice_id, prefix="study__"):
        rows = (
            DicomInstance.objects.for_practice(practice_id)
            .filter(state=DicomInstance.State.PROCESSED, series__isnull=False)
            .filter(scope)
            .filter(_all(f("series__") for f in query.series))
            .filter(_all(f("") for f in query.image))
            .select_related("study", "series")
            # JSON a retrieve never reads: decoding it was most of a 300-slice selection
            .defer("analysis", "study__match_candidates", "study__metadata")
            .order_by("series_id", "instance_number", "version")
        )
        for instance in rows:
            latest[instance.sop_instance_uid] = instance  # ordered by version: last wins
    return list(latest.values())
