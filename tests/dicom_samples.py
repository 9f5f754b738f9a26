"""The one DICOM sample builder of the tests.

- ``intraoral``: a small, real Digital Intra-oral X-Ray data set built from scratch (a 16-bit
  gradient plus noise, so a usable exposure); ``undecodable``: one claiming JPEG baseline
  that carries garbage; ``write`` and ``to_bytes`` save either.
- ``dicom_bytes``/``write_dicom``: pydicom's CT_small with our patient and fresh UIDs.
- ``ingest_processed``: one object through the ingest path and its pipeline task, now.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DigitalIntraOralXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from dicomnet.ingest.pipeline import process_instance
from dicomnet.ingest.storage import copy_into_spool_tmp
from dicomnet.ingest.store import StoreOutcome, store_instance
from dicomnet.models import DicomInstance
from patients.models import Practice
from tests.fixtures import PYDICOM_TEST_FILES


def intraoral(
    *,
    patient_id: str = "",
    patient_name: str = "",
    birth_date: str = "",
    study_date: str = "20240102",
    study_time: str = "101500",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    instance_number: int = 1,
    seed: int = 0,
    size: int = 64,
    **elements,
) -> Dataset:
    """A 16-bit intra-oral X-ray with a gradient plus noise (a usable exposure), with fresh
    UIDs unless given; ``elements`` (keyword=value) are set last, and the file meta follows
    the SOP class and instance UIDs they leave."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DigitalIntraOralXRayImageStorageForPresentation
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = birth_date
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.Modality = "IO"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    rng = np.random.default_rng(seed)
    gradient = np.linspace(200, 3800, size * size).reshape(size, size)
    pixels = (gradient + rng.normal(0, 150, (size, size))).clip(0, 4095).astype(np.uint16)
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def undecodable(**kwargs) -> Dataset:
    """Claims JPEG baseline but carries garbage: stores fine, cannot be rendered."""
    ds = intraoral(**kwargs)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = encapsulate([b"\xff\xd8 this is not a JPEG stream \xff\xd9"])
    ds["PixelData"].VR = "OB"
    return ds


def write(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def to_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def dicom_bytes(
    *,
    patient_id: str,
    patient_name: str,
    birth_date: str = "",
    study_uid: str | None = None,
    series_uid: str | None = None,
    study_date: str | dt.date = "20240115",
    study_time: str = "101500",
    instance_number: int = 1,
) -> bytes:
    """A small CT image (decodable, so it gets a preview) for the given patient, with a
    fresh SOP Instance UID (and fresh study and series UIDs unless given)."""
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "CT_small.dcm")
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = birth_date
    ds.StudyDate = study_date if isinstance(study_date, str) else study_date.strftime("%Y%m%d")
    ds.StudyTime = study_time
    ds.InstanceNumber = instance_number
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return to_bytes(ds)


def write_dicom(path: Path, **kwargs) -> Path:
    path.write_bytes(dicom_bytes(**kwargs))
    return path


def store_bytes(practice: Practice, data: bytes, *, position: int = 1) -> StoreOutcome:
    """Store ``data`` through the durable ingest path, as a received object; its processing
    task is queued, not run. The spool temp file is removed whatever happens."""
    tmp = copy_into_spool_tmp(io.BytesIO(data))
    try:
        return store_instance(tmp, practice=practice, server=None, position=position)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def ingest_bytes(practice: Practice, data: bytes, *, position: int = 1) -> DicomInstance:
    """Store ``data`` through the ingest path and run its pipeline task here, now."""
    outcome = store_bytes(practice, data, position=position)
    assert process_instance(outcome.instance.pk) == "processed"
    return DicomInstance.objects.select_related("study", "series").get(pk=outcome.instance.pk)


def ingest_dataset(practice: Practice, ds: Dataset) -> DicomInstance:
    return ingest_bytes(practice, to_bytes(ds))


def ingest_processed(practice: Practice, **kwargs) -> DicomInstance:
    """``ingest_bytes`` of the CT-based sample ``dicom_bytes(**kwargs)`` builds."""
    return ingest_bytes(practice, dicom_bytes(**kwargs))
