"""Read what we need from a DICOM file's header, without touching pixel data."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomnet.dimse.uids import is_valid_uid
from dicomnet.dimse.values import parse_da, parse_tm


class UnreadableDicom(Exception):
    """The bytes are not a DICOM dataset we can parse."""


class InvalidUids(Exception):
    """The dataset's UIDs are missing, malformed, or contradict the command's."""


def read_header(path: Path | str) -> Dataset:
    """Parse up to (not including) the pixel data; large values stay on disk."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size=64 * 1024)
        _check_not_cut_off(path, ds)
        # Touch the elements we rely on so decoding errors surface here, not later.
        for keyword in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "PatientName"):
            _ = ds.get(keyword)
    except UnreadableDicom:
        raise
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDicom(f"not a readable DICOM file: {exc}") from exc
    except Exception as exc:  # pydicom raises a variety of errors for corrupt data
        raise UnreadableDicom(f"not a readable DICOM file: {type(exc).__name__}: {exc}") from exc
    return ds


def _check_not_cut_off(path: Path | str, ds: Dataset) -> None:
    """pydicom stops quietly at the end of a file, so a cut-off object parses as a shorter one.

    Refuse an empty data set, and a last element whose declared length runs past the end of
    the file or is followed by a stub too short to be an element header. (A cut exactly on an
    element boundary can't be told from a complete object.)
    """
    if not ds:
        raise UnreadableDicom("not a readable DICOM dataset: nothing after the file meta")
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return  # offsets are in the inflated stream, not the file
    last = ds.get_item(max(ds.keys()))
    tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if tell is None or length is None or length == 0xFFFFFFFF:
        return  # already converted, or an undefined-length sequence
    size = os.path.getsize(path)
    if tell + length > size or 0 < size - (tell + length) < 8:
        raise UnreadableDicom(
            f"not a readable DICOM dataset: truncated, element {last.tag} needs {length} bytes "
            f"at offset {tell} but the file is {size} bytes"
        )


def check_uids(
    ds: Dataset,
    *,
    expected_sop_instance_uid: str | None = None,
    expected_sop_class_uid: str | None = None,
) -> None:
    # pydicom parses almost any bytes into some elements. When nothing identifies a DICOM
    # object, the data is unreadable (0xC000), not a dataset with bad UIDs (0xA900).
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        raise UnreadableDicom("not a readable DICOM dataset: no SOP Class or SOP Instance UID")
    for keyword in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"):
        value = str(ds.get(keyword, "") or "")
        if not is_valid_uid(value):
            raise InvalidUids(f"{keyword} {value[:80]!r} is missing or not a valid UID")
    if expected_sop_instance_uid and ds.SOPInstanceUID != expected_sop_instance_uid:
        raise InvalidUids(
            f"dataset SOPInstanceUID {ds.SOPInstanceUID} differs from the command's "
            f"{expected_sop_instance_uid}"
        )
    if expected_sop_class_uid and ds.SOPClassUID != expected_sop_class_uid:
        raise InvalidUids(
            f"dataset SOPClassUID {ds.SOPClassUID} differs from the command's "
            f"{expected_sop_class_uid}"
        )


def text(ds: Dataset, keyword: str, limit: int = 200) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def integer(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class InstanceHeader:
    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    patient_id: str
    patient_name: str
    patient_birth_date: dt.date | None
    patient_sex: str
    accession_number: str
    study_date: dt.date | None
    study_time: dt.time | None
    study_description: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    frames: int
    scheduled_step_ids: tuple[str, ...]


def header_fields(ds: Dataset) -> InstanceHeader:
    meta = getattr(ds, "file_meta", None)
    steps = tuple(
        text(item, "ScheduledProcedureStepID", 16)
        for item in ds.get("RequestAttributesSequence", []) or []
        if text(item, "ScheduledProcedureStepID", 16)
    )
    return InstanceHeader(
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        transfer_syntax_uid=str(meta.get("TransferSyntaxUID", "")) if meta else "",
        patient_id=text(ds, "PatientID", 64),
        patient_name=text(ds, "PatientName", 200),
        patient_birth_date=parse_da(ds.get("PatientBirthDate")),
        patient_sex=text(ds, "PatientSex", 16),
        accession_number=text(ds, "AccessionNumber", 16),
        study_date=parse_da(ds.get("StudyDate") or ds.get("ContentDate")),
        study_time=parse_tm(ds.get("StudyTime") or ds.get("ContentTime")),
        study_description=text(ds, "StudyDescription"),
        modality=text(ds, "Modality", 16),
        series_number=integer(ds, "SeriesNumber"),
        series_description=text(ds, "SeriesDescription"),
        body_part_examined=text(ds, "BodyPartExamined", 64),
        instance_number=integer(ds, "InstanceNumber"),
        rows=integer(ds, "Rows"),
        columns=integer(ds, "Columns"),
        frames=integer(ds, "NumberOfFrames") or 1,
        scheduled_step_ids=steps,
    )


def json_metadata(ds: Dataset) -> dict:
    """The header as DICOM JSON (PS3.18 F), bulk values left out."""

    def drop_bulk(_element) -> str:
        return ""

    try:
        return ds.to_json_dict(bulk_data_threshold=4096, bulk_data_element_handler=drop_bulk)
    except Exception as exc:  # a malformed element must not stop ingest
        return {"_error": f"metadata not serialisable: {exc}"}
