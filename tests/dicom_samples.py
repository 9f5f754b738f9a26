"""Real DICOM files for tests: pydicom's CT_small with our patient and fresh UIDs."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from dicomnet.ingest.pipeline import process_instance
from dicomnet.ingest.storage import copy_into_spool_tmp
from dicomnet.ingest.store import store_instance
from dicomnet.models import DicomInstance
from patients.models import Practice
from tests.fixtures import PYDICOM_TEST_FILES


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
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def write_dicom(path: Path, **kwargs) -> Path:
    path.write_bytes(dicom_bytes(**kwargs))
    return path


def ingest_processed(practice: Practice, **kwargs) -> DicomInstance:
    """Store one object through the ingest path and run its pipeline task here, now."""
    tmp = copy_into_spool_tmp(io.BytesIO(dicom_bytes(**kwargs)))
    try:
        outcome = store_instance(tmp, practice=practice, server=None)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    assert process_instance(outcome.instance.pk) == "processed"
    return DicomInstance.objects.select_related("study").get(pk=outcome.instance.pk)
