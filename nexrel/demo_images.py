"""The demo's radiographs: bitewings and panoramics of a few demo patients, as DICOM objects
built here (pixels from ``nexrel.radiographs``) and received through the real ingest
path (``dicomnet.ingest.local.ingest_now``): durable store, previews, patient matching,
mounts placed by their tooth codes.

Every UID is derived from the demo's names (``demo_uid``), so seeding again finds each
image already stored and skips it: the same images, never a second copy.
"""

from __future__ import annotations

import datetime as dt
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import (
    DigitalIntraOralXRayImageStorageForPresentation,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    generate_uid,
)

from dicomnet.dental.teeth import fdi_for_code
from dicomnet.ingest.local import ingest_now
from dicomnet.models import DicomInstance, DicomServer
from nexrel import radiographs as xray
from nexrel.radiographs import Mouth
from patients.models import Patient, Practice


def _tooth_codes() -> dict[str, Code]:
    """CID 4018 (permanent teeth) by FDI number: the codes the images name their teeth with."""
    table = {}
    for name in codes.cid4018.dir():
        code = getattr(codes.cid4018, name)
        fdi = fdi_for_code(code.scheme_designator, code.value)
        if fdi:
            table[fdi] = code
    return table


TOOTH_CODES = _tooth_codes()
JAW_REGION = codes.cid4016.JawRegion

# The four bitewings, in the order they are taken: (region, side, image laterality).
BITEWINGS = [
    ("molar", "right", "R"),
    ("premolar", "right", "R"),
    ("premolar", "left", "L"),
    ("molar", "left", "L"),
]


@dataclass(frozen=True)
class Exam:
    """Radiographs of one patient on one day: ``kind`` "bitewings" (four) or "panoramic",
    from the practice's device ``device`` (its AE title), or uploaded if blank."""

    chart: str
    kind: str
    taken: dt.datetime
    device: str = ""


def demo_uid(practice: Practice, *names: object) -> str:
    """A UID for ``names`` of ``practice``'s demo, the same on every run (pydicom's root and
    a hash of the names: no registered root needed)."""
    return generate_uid(entropy_srcs=["nexrel demo", practice.ae_title, *map(str, names)])


def seed_images(practice: Practice, exams: list[Exam], mouths: dict[str, Mouth]) -> int:
    """Ingest the images of ``exams`` that ``practice`` does not hold yet; how many were."""
    devices = {d.ae_title: d for d in DicomServer.objects.for_practice(practice)}
    added = 0
    for exam in exams:
        patient = Patient.objects.for_practice(practice).get(chart_number=exam.chart)
        server = devices.get(exam.device)
        for position, ds in enumerate(exam_datasets(practice, exam, patient, mouths), start=1):
            ingest_now(
                practice,
                _to_bytes(ds),
                server=server,
                calling_ae=server.ae_title if server else "",
                position=position,
            )
            added += 1
    return added


def exam_datasets(
    practice: Practice, exam: Exam, patient: Patient, mouths: dict[str, Mouth]
) -> Iterator[Dataset]:
    """The exam's images not stored yet, built only then (the pixels are the costly part)."""
    mouth = mouths.get(exam.chart, Mouth())
    kinds = [("panoramic", "", "")] if exam.kind == "panoramic" else BITEWINGS
    for number, (region, side, laterality) in enumerate(kinds, start=1):
        sop_uid = demo_uid(practice, exam.chart, exam.kind, exam.taken.isoformat(), number)
        held = DicomInstance.objects.for_practice(practice).filter(sop_instance_uid=sop_uid)
        if held.filter(state=DicomInstance.State.PROCESSED).exists():
            continue
        ds = _base(practice, exam, patient, sop_uid=sop_uid, number=number)
        seed = zlib.crc32(sop_uid.encode())
        if exam.kind == "panoramic":
            _panoramic(ds, xray.panoramic(mouth, seed=seed))
        else:
            taken = exam.taken + dt.timedelta(seconds=40 * number)
            ds.AcquisitionDateTime = taken.strftime("%Y%m%d%H%M%S")
            _bitewing(ds, xray.bitewing(region, side, mouth, seed=seed), laterality)
            ds.PrimaryAnatomicStructureSequence = [
                _code_item(TOOTH_CODES[t]) for t in xray.bitewing_teeth(region, side, mouth)
            ]
        yield ds


def _base(
    practice: Practice, exam: Exam, patient: Patient, *, sop_uid: str, number: int
) -> Dataset:
    """The patient, study, series, equipment and instance attributes of one image."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = f"{patient.family_name}^{patient.given_name}"
    ds.PatientID = patient.chart_number
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d") if patient.birth_date else ""
    ds.PatientSex = patient.sex
    ds.StudyInstanceUID = demo_uid(practice, exam.chart, exam.kind, exam.taken.isoformat())
    ds.SeriesInstanceUID = demo_uid(practice, exam.chart, exam.kind, exam.taken.isoformat(), "s")
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = exam.taken.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = exam.taken.strftime("%H%M%S")
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = ds.SeriesDescription = (
        "Panoramic" if exam.kind == "panoramic" else "Bitewings (4)"
    )
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.InstitutionName = practice.name
    ds.Manufacturer = "Nexrel demo"
    ds.ManufacturerModelName = "synthetic radiograph"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.PixelIntensityRelationship = "LIN"
    ds.PixelIntensityRelationshipSign = 1
    ds.PresentationLUTShape = "IDENTITY"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    return ds


def _pixels(ds: Dataset, pixels: np.ndarray) -> None:
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    ds.WindowCenter, ds.WindowWidth = xray.window(pixels)


def _bitewing(ds: Dataset, pixels: np.ndarray, laterality: str) -> None:
    ds.SOPClassUID = DigitalIntraOralXRayImageStorageForPresentation
    ds.Modality = "IO"
    ds.ImageLaterality = laterality
    ds.PositionerType = "NONE"
    ds.DetectorType = "SCINTILLATOR"
    ds.KVP, ds.ExposureTime, ds.XRayTubeCurrent = 65, 80, 7
    ds.ImagerPixelSpacing = [xray.INTRAORAL_MM_PER_PIXEL] * 2
    _pixels(ds, pixels)


def _panoramic(ds: Dataset, pixels: np.ndarray) -> None:
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.Modality = "PX"
    ds.ImageLaterality = "B"
    ds.PositionerType = "NONE"
    ds.DetectorType = "SCINTILLATOR"
    ds.KVP, ds.ExposureTime, ds.XRayTubeCurrent = 70, 14000, 10
    ds.AnatomicRegionSequence = [_code_item(JAW_REGION)]
    # At the detector, and at the teeth once the machine's magnification is taken out.
    ds.ImagerPixelSpacing = [xray.PANORAMIC_MM_PER_PIXEL * 1.25] * 2
    ds.EstimatedRadiographicMagnificationFactor = 1.25
    ds.PixelSpacing = [xray.PANORAMIC_MM_PER_PIXEL] * 2
    ds.PixelSpacingCalibrationType = "GEOMETRY"
    _pixels(ds, pixels)


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    return item


def _to_bytes(ds: Dataset) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
