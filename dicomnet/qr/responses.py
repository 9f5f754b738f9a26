"""Matches as C-FIND answers (PS3.4 C.4.1.1.3.2): the keys asked for, at the asked level.

Every level is answered from the index rows (DicomStudy, DicomSeries, DicomInstance), never
from the stored objects. An answer carries the level's unique keys (and, for Study Root's
hierarchy, those above) even when not asked, and every asked key, empty when Nexrel holds no
value for it, in the device profile's SpecificCharacterSet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

from pydicom import Dataset
from pydicom.datadict import keyword_for_tag

from dicomnet.dimse.encoded import EncodedAnswers
from dicomnet.models import DicomSeries
from dicomnet.qr.matching import (
    BATCH,
    QrQuery,
    matching_instances,
    matching_series,
    matching_study_rows,
)


def _date(value) -> str:
    return value.strftime("%Y%m%d") if value else ""


def _time(value) -> str:
    if not value:
        return ""
    return value.strftime("%H%M%S.%f" if value.microsecond else "%H%M%S")


def _patient_values(row: dict) -> dict[str, object]:
    return {
        "PatientName": row["patient_name"],
        "PatientID": row["patient_id"],
        "PatientBirthDate": _date(row["patient_birth_date"]),
        "PatientSex": row["patient_sex"],
    }


STUDY_FIELDS = (
    "pk", "patient_name", "patient_id", "patient_birth_date", "patient_sex",
    "study_instance_uid", "study_date", "study_time", "accession_number",
    "study_description", "modality", "series_count", "instance_count",
)  # fmt: skip


def _study_values(row: dict) -> dict[str, object]:
    modalities = [m for m in (row["modality"] or "").split("\\") if m]
    return {
        **_patient_values(row),
        "StudyInstanceUID": row["study_instance_uid"],
        "StudyDate": _date(row["study_date"]),
        "StudyTime": _time(row["study_time"]),
        "AccessionNumber": row["accession_number"],
        "StudyDescription": row["study_description"],
        "ModalitiesInStudy": modalities,
        "NumberOfStudyRelatedSeries": row["series_count"],
        "NumberOfStudyRelatedInstances": row["instance_count"],
    }


def _prefixed(row: dict, prefix: str) -> dict:
    return {key.removeprefix(prefix): value for key, value in row.items()}


def _patients(query: QrQuery, practice_id: int) -> Iterator[dict[str, object]]:
    """One answer per PatientID, its counts summed over the matching studies."""
    patients: dict[str, dict] = {}
    for row in matching_study_rows(query, practice_id=practice_id, fields=STUDY_FIELDS):
        known = patients.get(row["patient_id"])
        if known is None:
            patients[row["patient_id"]] = known = {
                **_patient_values(row),
                "NumberOfPatientRelatedStudies": 0,
                "NumberOfPatientRelatedSeries": 0,
                "NumberOfPatientRelatedInstances": 0,
            }
        known["NumberOfPatientRelatedStudies"] += 1
        known["NumberOfPatientRelatedSeries"] += row["series_count"]
        known["NumberOfPatientRelatedInstances"] += row["instance_count"]
    yield from patients.values()


def _studies(query: QrQuery, practice_id: int) -> Iterator[dict[str, object]]:
    """Each matching study as it is read (one query, streamed: no list of ids first)."""
    for row in matching_study_rows(query, practice_id=practice_id, fields=STUDY_FIELDS):
        yield _study_values(row)


SERIES_FIELDS = (
    "series_instance_uid", "modality", "series_number", "series_description",
    "body_part_examined", "instance_count", *(f"study__{f}" for f in STUDY_FIELDS[1:]),
)  # fmt: skip


def _series(query: QrQuery, practice_id: int) -> Iterator[dict[str, object]]:
    for series in matching_series(query, practice_id=practice_id):
        for row in series.values(*SERIES_FIELDS).iterator(chunk_size=BATCH):
            yield {
                **_study_values(_prefixed(row, "study__")),
                "SeriesInstanceUID": row["series_instance_uid"],
                "Modality": row["modality"],
                "SeriesNumber": row["series_number"],
                "SeriesDescription": row["series_description"],
                "BodyPartExamined": row["body_part_examined"],
                "NumberOfSeriesRelatedInstances": row["instance_count"],
            }


def _images(query: QrQuery, practice_id: int) -> Iterator[dict[str, object]]:
    for instance in matching_instances(query, practice_id=practice_id):
        study = instance.study
        series = cast(DicomSeries, instance.series)  # matching_instances: series__isnull=False
        yield {
            **_study_values({f: getattr(study, f) for f in STUDY_FIELDS}),
            "SeriesInstanceUID": series.series_instance_uid,
            "Modality": series.modality,
            "SeriesNumber": series.series_number,
            "SOPInstanceUID": instance.sop_instance_uid,
            "SOPClassUID": instance.sop_class_uid,
            "InstanceNumber": instance.instance_number,
            "Rows": instance.rows,
            "Columns": instance.columns,
            "NumberOfFrames": instance.frames,
        }


LEVEL_ANSWERS = {"PATIENT": _patients, "STUDY": _studies, "SERIES": _series, "IMAGE": _images}


def level_answers(query: QrQuery, *, practice_id: int) -> Iterator[dict[str, object]]:
    """Each match at the query's level, as {keyword: value}."""
    return LEVEL_ANSWERS[query.level](query, practice_id)


# The unique keys of each level (and above, Study Root's hierarchy): always answered.
UNIQUE_KEYS = {
    "PATIENT": ("PatientID",),
    "STUDY": ("StudyInstanceUID",),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}


ANSWER_CACHE_SIZE = 10_000  # a broad query's 5,000 answers twice over; ~5.4 kB each: ~55 MB
_answers = EncodedAnswers(ANSWER_CACHE_SIZE)


def _frozen(values: dict[str, object]) -> tuple:
    return tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items())


def encoded_answer(
    values: dict[str, object],
    *,
    query: QrQuery,
    character_set: str,
    retrieve_ae: str,
    implicit_vr: bool = True,
    little_endian: bool = True,
) -> Dataset:
    """``build_answer`` as raw elements in the association's encoding, kept while its inputs
    are unchanged (``dicomnet.dimse.encoded``): the key is the answered values themselves,
    the level, the keys asked for, the character set and the retrieve AE."""
    return _answers.get(
        (_frozen(values), query.level, query.keys, character_set, retrieve_ae),
        lambda: build_answer(
            values, query=query, character_set=character_set, retrieve_ae=retrieve_ae
        ),
        implicit_vr=implicit_vr,
        little_endian=little_endian,
    )


def build_answer(
    values: dict[str, object], *, query: QrQuery, character_set: str, retrieve_ae: str
) -> Dataset:
    """The keys the query asked for (empty when Nexrel holds no value) and the unique keys."""
    ds = Dataset()
    ds.SpecificCharacterSet = character_set
    ds.QueryRetrieveLevel = query.level
    for keyword in UNIQUE_KEYS[query.level]:
        # pydicom's update takes keywords too (as its docstring says), not only tags.
        ds.update({keyword: values.get(keyword, "")})  # type: ignore[dict-item]
    return add_keys(ds, values, query.keys, retrieve_ae=retrieve_ae)


def add_keys(
    ds: Dataset, values: dict[str, object], keys: Iterable[tuple[int, str]], *, retrieve_ae: str
) -> Dataset:
    """Each (tag, VR) of ``keys`` not yet in ``ds``, from ``values`` by keyword; empty when
    Nexrel holds no value. Shared by the C-FIND answers and QIDO-RS (``dicomnet.dicomweb``)."""
    for tag, vr in keys:
        if tag in ds:
            continue
        keyword = keyword_for_tag(tag)
        if keyword == "RetrieveAETitle":
            value: object = retrieve_ae
        else:
            value = values.get(keyword)
        if value in (None, "", []):
            ds.add_new(tag, vr, [] if vr == "SQ" else None)
        else:
            ds.add_new(tag, vr, value)
    return ds
