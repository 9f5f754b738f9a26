"""The shared matcher's bounds, through DCMTK findscu against both SCPs of the running listener.

Query/retrieve: ``StudyTime=083015`` is 08:30:15.000000 to 08:30:15.999999, so it finds a study
stored at 083015.4 and not one at 083016. Worklist: ``0800-0859`` ends at 08:59:59.999999, so
it finds an item scheduled at 08:59:30. On both, a PatientName wildcard with accents finds the
patient whatever the accents and case the device typed.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from django.utils import timezone
from pydicom import Dataset

from patients.models import Patient
from patients.services import create_appointment
from tests.dicom_samples import ingest_processed
from worklist.models import WorklistItem

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("findscu"), reason="DCMTK not installed"),
]


def findscu(port: int, model: str, keys: list[str], out: Path) -> list[Dataset]:
    out.mkdir(parents=True, exist_ok=True)
    argv = ["findscu", model, "-aet", "CARESTREAM", "-aec", "NEXREL-CRM", "-X", "-od", str(out)]
    argv += ["127.0.0.1", str(port)]
    for key in keys:
        argv += ["-k", key]
    result = subprocess.run(argv, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


@pytest.fixture
def two_studies(practice) -> dict[str, str]:
    at_fraction = ingest_processed(
        practice, patient_id="P-COTE", patient_name="Côté^Zoé", study_time="083015.4"
    )
    next_second = ingest_processed(
        practice, patient_id="P-BEL", patient_name="Bélanger^Étienne", study_time="083016"
    )
    return {
        "083015.4": at_fraction.study.study_instance_uid,
        "083016": next_second.study.study_instance_uid,
    }


def test_qr_study_time_covers_the_whole_second(listener, two_studies, tmp_path):
    _, port = listener
    keys = ["QueryRetrieveLevel=STUDY", "StudyTime=083015", "StudyInstanceUID"]
    (answer,) = findscu(port, "-S", keys, tmp_path / "second")
    assert answer.StudyInstanceUID == two_studies["083015.4"]
    assert answer.StudyTime == "083015.400000"  # the fraction was kept at ingest

    keys = ["QueryRetrieveLevel=STUDY", "StudyTime=0830", "StudyInstanceUID"]
    minute = findscu(port, "-S", keys, tmp_path / "minute")
    assert {a.StudyInstanceUID for a in minute} == set(two_studies.values())

    keys = ["QueryRetrieveLevel=STUDY", "StudyTime=083015.5-", "StudyInstanceUID"]
    (later,) = findscu(port, "-S", keys, tmp_path / "after")
    assert later.StudyInstanceUID == two_studies["083016"]


def test_qr_patient_name_wildcard_with_accents(listener, two_studies, tmp_path):
    _, port = listener
    keys = ["SpecificCharacterSet=ISO_IR 192", "QueryRetrieveLevel=STUDY",
            "PatientName=CÔTÉ^zo*", "StudyInstanceUID"]  # fmt: skip
    (answer,) = findscu(port, "-S", keys, tmp_path / "name")
    assert answer.StudyInstanceUID == two_studies["083015.4"]
    keys[2] = "PatientName=bel?nger*"
    (answer,) = findscu(port, "-S", keys, tmp_path / "name2")
    assert answer.StudyInstanceUID == two_studies["083016"]


@pytest.fixture
def item_at_085930(practice) -> WorklistItem:
    patient = Patient.objects.for_practice(practice).get(chart_number="1003")  # Lévesque
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(timezone.localdate(), dt.time(8, 59, 30), tzinfo=zone)
    appointment = create_appointment(
        practice=practice,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=20),
        operatory="OP-1",  # the Carestream's operatory
        procedure_code="D0220",
        procedure_description="Intraoral - periapical first radiographic image",
        needs_imaging=True,
    )
    return WorklistItem.objects.get(appointment=appointment)


def mwl_keys(start_time: str, *more: str) -> list[str]:
    step = "ScheduledProcedureStepSequence[0]."
    today = timezone.localdate().strftime("%Y%m%d")
    return [
        f"{step}ScheduledStationAETitle=CARESTREAM",
        f"{step}ScheduledProcedureStepStartDate={today}",
        f"{step}ScheduledProcedureStepStartTime={start_time}",
        "AccessionNumber",
        "PatientName",
        *more,
    ]


def test_mwl_time_range_ends_at_the_last_instant_of_its_minute(listener, item_at_085930, tmp_path):
    _, port = listener
    found = findscu(port, "-W", mwl_keys("0800-0859"), tmp_path / "hour")
    assert item_at_085930.accession_number in {a.AccessionNumber for a in found}
    found = findscu(port, "-W", mwl_keys("0800-0858"), tmp_path / "before")
    assert item_at_085930.accession_number not in {a.AccessionNumber for a in found}
    found = findscu(port, "-W", mwl_keys("085930"), tmp_path / "exact")
    assert [a.AccessionNumber for a in found] == [item_at_085930.accession_number]


def test_mwl_patient_name_wildcard_with_accents(listener, item_at_085930, tmp_path):
    _, port = listener
    keys = mwl_keys("0800-0900", "SpecificCharacterSet=ISO_IR 192", "PatientName=LÉV*")
    keys.remove("PatientName")
    (answer,) = findscu(port, "-W", keys, tmp_path / "name")
    assert answer.AccessionNumber == item_at_085930.accession_number
    assert str(answer.PatientName) == "Lévesque^Geneviève"
