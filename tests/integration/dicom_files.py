"""Fresh DICOM objects for integration tests, built from pydicom's bundled CT_small.dcm."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from tests.fixtures import PYDICOM_TEST_FILES


def write_instance(
    path: Path,
    *,
    study_uid: str,
    series_uid: str,
    patient_id: str,
    patient_name: str,
    study_date: dt.date,
    instance_number: int = 1,
) -> Path:
    """Write a copy of CT_small.dcm with a new SOP Instance UID and the given identity."""
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "CT_small.dcm")
    sop_uid = generate_uid()
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.StudyDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = "101500"
    ds.InstanceNumber = instance_number
    ds.save_as(path, enforce_file_format=True)
    return path
