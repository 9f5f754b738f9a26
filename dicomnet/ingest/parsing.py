"""Read what we need from a DICOM file's header, without touching pixel data."""

from __future__ import annotations

import datetime as dt
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomnet.dimse.uids import is_valid_uid
from dicomnet.dimse.values import parse_da, parse_tm

_UID_KEYWORDS = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")


class UnreadableDicom(Exception):
    """The bytes are not a DICOM dataset we can parse."""


class InvalidUids(Exception):
    """The dataset's UIDs are missing, malformed, or contradict the command's."""


class BoundedFile:
    """A file opened for reading that never reads more than it holds in one call.

    pydicom reads a value as ``fp.read(its declared length)``, and Python allocates that
    length before reading: a length mutated to 4 GiB in a 40 KB file is a 4 GiB allocation,
    or a MemoryError. Here a read asks for what is left at most. pydicom reopens the file
    by name, with this class, to read a deferred value: those reads are bounded too.
    """

    def __init__(self, name: Path | str, mode: str = "rb") -> None:
        self._fp = open(name, "rb")  # closed by close(), as a file is
        self.name = str(name)
        self._size = os.fstat(self._fp.fileno()).st_size

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            size = min(size, max(self._size - self._fp.tell(), 0))
        return self._fp.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()

    def close(self) -> None:
        self._fp.close()

    @property
    def closed(self) -> bool:
        return self._fp.closed

    def __enter__(self) -> BoundedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_header(path: Path | str) -> Dataset:
    """Parse up to (not including) the pixel data; large values stay on disk."""
    try:
        _check_inflated_size(path)
        with BoundedFile(path) as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, defer_size=64 * 1024)
        _check_not_cut_off(path, ds)
        # Touch the elements we rely on so decoding errors surface here, not later (the
        # Series Instance UID too, which check_uids reads: found by fuzzing, it was a 0xC211).
        for keyword in (*_UID_KEYWORDS, "PatientName"):
            _ = ds.get(keyword)
    except UnreadableDicom:
        raise
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDicom(f"not a readable DICOM file: {exc}") from exc
    except Exception as exc:  # pydicom raises a variety of errors for corrupt data
        raise UnreadableDicom(f"not a readable DICOM file: {type(exc).__name__}: {exc}") from exc
    return ds


def _check_inflated_size(path: Path | str) -> None:
    """Refuse a deflated object that inflates past ``NEXREL_MAX_INFLATED_BYTES``.

    pydicom inflates a Deflated Explicit VR Little Endian data set whole, in memory, before
    reading a single element of it: a few MB of deflated zeros would become gigabytes in
    the listener. Inflate it here first, a piece at a time and discarding the output,
    stopping as soon as the limit is passed.
    """
    limit = settings.NEXREL_MAX_INFLATED_BYTES
    with BoundedFile(path) as fp:
        read_preamble(fp, False)  # type: ignore[arg-type]  # as dcmread: no "DICM", an error
        meta = _read_file_meta_info(fp)  # type: ignore[arg-type]  # pydicom's, as dcmread
        if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
            return
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        inflated = 0
        while chunk := fp.read(1024 * 1024):
            # At the end of the stream, zlib keeps the bytes after it as unconsumed_tail
            # when max_length was given: stop on eof, or this loops forever (fuzzing).
            while chunk and not inflater.eof:
                inflated += len(inflater.decompress(chunk, 1024 * 1024))
                if inflated > limit:
                    raise UnreadableDicom(
                        f"not a readable DICOM dataset: its deflated data set inflates to more "
                        f"than {limit} bytes (NEXREL_MAX_INFLATED_BYTES)"
                    )
                chunk = inflater.unconsumed_tail
            if inflater.eof:
                return


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
    for keyword in _UID_KEYWORDS:
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


def value_of(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword)``, or ``default`` when the element can't be decoded.

    pydicom decodes an element when it is first read: a VR no edition defines, or a value
    that doesn't fit its VR, raises then. One such element must not stop the processing
    of an object the listener has already stored: it reads as absent.
    """
    try:
        return ds.get(keyword, default)
    except Exception:
        return default


def text(ds: Dataset, keyword: str, limit: int = 200) -> str:
    value = value_of(ds, keyword, "")
    if value is None or isinstance(value, pydicom.Sequence | Dataset):
        return ""  # a sequence where text belongs: str() would decode every item
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def integer(ds: Dataset, keyword: str) -> int | None:
    try:
        value = value_of(ds, keyword)
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
        for item in value_of(ds, "RequestAttributesSequence") or []
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
        patient_birth_date=parse_da(value_of(ds, "PatientBirthDate")),
        patient_sex=text(ds, "PatientSex", 16),
        accession_number=text(ds, "AccessionNumber", 16),
        study_date=parse_da(value_of(ds, "StudyDate") or value_of(ds, "ContentDate")),
        study_time=parse_tm(value_of(ds, "StudyTime") or value_of(ds, "ContentTime")),
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
