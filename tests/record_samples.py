"""A patient with a record to export (dicomnet/export.py): two studies linked to the demo's
Zoé Côté (1001), one image re-sent with other bytes (a version 2), teeth on the intra-oral
images, and another patient's study that must stay out."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Patient, Practice
from tests.dental_samples import tooth_item
from tests.dicom_samples import ingest_dataset, ingest_processed, intraoral

ZOE = {"patient_id": "1001", "patient_name": "COTE^ZOE"}


@dataclass
class Record:
    patient: Patient
    bitewings: DicomStudy
    ct: DicomStudy
    resent: Dataset  # the version 2 of the first bitewing, as sent
    other: DicomStudy  # another patient's


def _bitewing(study_uid: str, series_uid: str, n: int, teeth: list[str], **kw) -> Dataset:
    ds = intraoral(
        **ZOE,
        study_uid=study_uid,
        series_uid=series_uid,
        instance_number=n,
        seed=n,
        StudyDescription="Bitewings <gauche> & droite",
        **kw,
    )
    ds.PrimaryAnatomicStructureSequence = [tooth_item(t) for t in teeth]
    return ds


def record(practice: Practice) -> Record:
    patient = practice.patients.get(chart_number="1001")
    study_uid, series_uid = generate_uid(), generate_uid()
    first = _bitewing(study_uid, series_uid, 1, ["16", "46"])
    ingest_dataset(practice, first)
    ingest_dataset(practice, _bitewing(study_uid, series_uid, 2, ["26", "36"]))
    resent = _bitewing(study_uid, series_uid, 1, ["16", "46"], sop_uid=first.SOPInstanceUID)
    resent.PixelData = bytes(reversed(resent.PixelData))  # other bytes: a version 2
    v2 = ingest_dataset(practice, resent)
    assert v2.version == 2
    ct = ingest_processed(practice, **ZOE, study_date="20250301").study
    other = ingest_processed(practice, patient_id="1002", patient_name="BELANGER^ETIENNE").study
    bitewings = DicomStudy.objects.get(practice=practice, study_instance_uid=study_uid)
    for study in (bitewings, ct):
        assert study.patient == patient, study.status_reason
    assert other is not None and other.patient != patient
    assert ct is not None
    return Record(patient, bitewings, ct, resent, other)


def latest(study: DicomStudy) -> list[DicomInstance]:
    return list(DicomInstance.objects.latest_versions().filter(study=study))
