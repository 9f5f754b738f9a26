"""Build small, real DICOM files for the durability and pipeline tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DigitalIntraOralXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)


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
) -> Dataset:
    """A 16-bit intra-oral X-ray with a gradient plus noise (a usable exposure)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = DigitalIntraOralXRayImageStorageForPresentation
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
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
