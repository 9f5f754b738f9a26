"""Query/Retrieve SCP on the running listener, asked by DCMTK findscu, movescu and getscu.

The archive: Côté^Zoé (one CT series of two images, 2024-01-15), Lévesque^Geneviève (one
image, 2023-03-01) and Tremblay^Marc (one image, 2024-06-10), stored through the ingest path
and processed in this process on the shared test database.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.valuerep import PersonName
from pynetdicom import AE, build_role
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from dicomnet.dimse import status
from dicomnet.models import DicomInstance, DicomServer
from patients.models import AuditEvent
from tests.dicom_samples import ingest_processed
from tests.fixtures import free_port, wait_for_port, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("findscu"), reason="DCMTK not installed"),
]


@pytest.fixture
def archive(practice) -> dict[str, str]:
    zoe = ingest_processed(practice, patient_id="P-COTE", patient_name="Côté^Zoé",
                           birth_date="19850412", study_date="20240115")  # fmt: skip
    ingest_processed(
        practice,
        patient_id="P-COTE",
        patient_name="Côté^Zoé",
        birth_date="19850412",
        study_date="20240115",
        study_uid=zoe.study.study_instance_uid,
        series_uid=zoe.series.series_instance_uid,
        instance_number=2,
    )
    gen = ingest_processed(practice, patient_id="P-LEV", patient_name="Lévesque^Geneviève",
                           study_date="20230301")  # fmt: skip
    marc = ingest_processed(practice, patient_id="P-TRE", patient_name="Tremblay^Marc",
                            study_date="20240610")  # fmt: skip
    return {
        "zoe": zoe.study.study_instance_uid,
        "zoe_series": zoe.series.series_instance_uid,
        "genevieve": gen.study.study_instance_uid,
        "marc": marc.study.study_instance_uid,
    }


def dcmtk(
    tool: str, root: str, port: int, keys: list[str | bytes], *extra: str, calling="CARESTREAM"
):
    argv = [tool, root, "-aet", calling, "-aec", "NEXREL-CRM", *extra, "127.0.0.1", str(port)]
    for key in keys:
        argv += ["-k", key]  # bytes: as the device's character set has them
    return subprocess.run(argv, capture_output=True, timeout=60)


def findscu(port: int, root: str, keys: list[str], out: Path, calling="CARESTREAM"):
    out.mkdir(parents=True, exist_ok=True)
    result = dcmtk("findscu", root, port, keys, "-X", "-od", str(out), calling=calling)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def raw_name(ds: Dataset) -> bytes:
    value = ds.get_item(0x00100010).value
    raw = value.original_string if isinstance(value, PersonName) else value
    return raw.rstrip(b" ")


def test_findscu_study_root_with_accent_insensitive_wildcards_and_dates(
    listener, archive, tmp_path
):
    _, port = listener
    keys = ["QueryRetrieveLevel=STUDY", "PatientName=cote*", "StudyInstanceUID",
            "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "PatientBirthDate",
            "StudyDescription"]  # fmt: skip
    (zoe,) = findscu(port, "-S", keys, tmp_path / "name")
    assert zoe.SpecificCharacterSet == "ISO_IR 192"
    assert raw_name(zoe) == "Côté^Zoé".encode()
    assert zoe.StudyInstanceUID == archive["zoe"]
    assert zoe.ModalitiesInStudy == "CT"
    assert int(zoe.NumberOfStudyRelatedInstances) == 2
    assert zoe.PatientBirthDate == "19850412"
    assert "StudyDescription" in zoe

    keys = ["QueryRetrieveLevel=STUDY", "StudyDate=20230101-20231231", "StudyInstanceUID"]
    (gen,) = findscu(port, "-S", keys, tmp_path / "dates")
    assert gen.StudyInstanceUID == archive["genevieve"]

    keys = ["QueryRetrieveLevel=STUDY", "PatientName=LEVESQUE", "StudyInstanceUID"]
    (gen,) = findscu(port, "-S", keys, tmp_path / "family")
    assert gen.StudyInstanceUID == archive["genevieve"]

    everything = findscu(port, "-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID"],
                         tmp_path / "all")  # fmt: skip
    assert {ds.StudyInstanceUID for ds in everything} == set(archive.values()) - {
        archive["zoe_series"]
    }


def test_findscu_patient_root_series_and_image_levels(listener, archive, tmp_path):
    _, port = listener
    keys = ["QueryRetrieveLevel=PATIENT", "PatientID=P-COTE", "PatientName",
            "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances"]  # fmt: skip
    (patient,) = findscu(port, "-P", keys, tmp_path / "patient")
    assert raw_name(patient) == "Côté^Zoé".encode()
    assert int(patient.NumberOfPatientRelatedStudies) == 1
    assert int(patient.NumberOfPatientRelatedInstances) == 2

    keys = ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={archive['zoe']}",
            "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances"]  # fmt: skip
    (series,) = findscu(port, "-S", keys, tmp_path / "series")
    assert series.SeriesInstanceUID == archive["zoe_series"]
    assert series.Modality == "CT"
    assert int(series.NumberOfSeriesRelatedInstances) == 2

    keys = ["QueryRetrieveLevel=IMAGE", "PatientID=P-COTE", f"StudyInstanceUID={archive['zoe']}",
            f"SeriesInstanceUID={archive['zoe_series']}", "SOPInstanceUID",
            "InstanceNumber"]  # fmt: skip
    images = findscu(port, "-P", keys, tmp_path / "images")
    assert sorted(int(ds.InstanceNumber) for ds in images) == [1, 2]
    assert len({ds.SOPInstanceUID for ds in images}) == 2


def test_findscu_malformed_identifier_is_a900(listener, archive, tmp_path):
    _, port = listener
    assoc = associate(port, "CARESTREAM")
    query = Dataset()
    query.QueryRetrieveLevel = "FRAME"
    query.StudyInstanceUID = ""
    responses = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    assoc.release()
    assert responses[-1][0].Status == status.IDENTIFIER_DOES_NOT_MATCH


@pytest.fixture
def storescp(practice, tmp_path):
    """A DCMTK storescp registered as the practice's device STORESCP."""
    port = free_port()
    out = tmp_path / "received"
    out.mkdir()
    proc = subprocess.Popen(
        ["storescp", "-aet", "STORESCP", "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    DicomServer.objects.create(practice=practice, name="Viewer", ae_title="STORESCP",
                               host="127.0.0.1", port=port)  # fmt: skip
    yield out
    proc.terminate()
    proc.wait(timeout=10)


def associate(port: int, calling: str, context=StudyRootQueryRetrieveInformationModelFind):
    ae = AE(ae_title=calling)
    ae.add_requested_context(context)
    return ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")


def move(port: int, calling: str, destination: str, study_uid: str) -> list[Dataset]:
    assoc = associate(port, calling, StudyRootQueryRetrieveInformationModelMove)
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    model = StudyRootQueryRetrieveInformationModelMove
    responses = [rsp for rsp, _ in assoc.send_c_move(query, destination, model)]
    assoc.release()
    return responses


def test_movescu_sends_the_study_to_a_registered_storescp(listener, archive, storescp):
    _, port = listener
    keys = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={archive['zoe']}"]
    result = dcmtk("movescu", "-S", port, keys, "-aem", "STORESCP")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    received = list(storescp.iterdir())
    assert len(received) == 2
    assert {str(pydicom.dcmread(p).PatientName) for p in received} == {"Côté^Zoé"}

    responses = move(port, "PLANMECA", "STORESCP", archive["zoe"])
    final = responses[-1]
    assert final.Status == status.SUCCESS
    assert final.NumberOfCompletedSuboperations == 2
    assert final.NumberOfFailedSuboperations == 0
    assert [r.NumberOfRemainingSuboperations for r in responses[:-1]] == [1, 0]


def test_move_to_an_unknown_destination_is_a801(listener, archive):
    proc, port = listener
    responses = move(port, "CARESTREAM", "NOWHERE", archive["zoe"])
    assert responses[-1].Status == status.MOVE_DESTINATION_UNKNOWN
    assert "0xA801" in proc.output() and "'NOWHERE'" in proc.output()


def test_move_from_a_device_without_allow_move_is_refused(listener, archive, storescp):
    """Refused at association time: the C-MOVE context is rejected in the A-ASSOCIATE-AC
    (the device is told at once), logged with why, and audited."""
    proc, port = listener
    DicomServer.objects.filter(ae_title="PLANMECA").update(allow_move=False)
    ae = AE(ae_title="PLANMECA")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    ae.add_requested_context(Verification)  # so that the association itself is accepted
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
    assert assoc.is_established
    assert [str(cx.abstract_syntax) for cx in assoc.rejected_contexts] == [
        str(StudyRootQueryRetrieveInformationModelMove)
    ]
    assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [str(Verification)]
    assoc.release()
    assert list(storescp.iterdir()) == []
    wait_until(lambda: "presentation context(s) refused" in proc.output(), timeout=5)
    assert (
        "Retrieving by C-MOVE is not allowed for DICOM device “Planmeca ProMax” (PLANMECA): "
        "allow move is off." in proc.output()
    )
    assert AuditEvent.objects.filter(what="contexts_refused", ae_title="PLANMECA").exists()


def test_getscu_retrieves_over_the_same_association(listener, archive, tmp_path):
    _, port = listener
    out = tmp_path / "got"
    out.mkdir()
    keys = ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={archive['zoe']}",
            f"SeriesInstanceUID={archive['zoe_series']}"]  # fmt: skip
    result = dcmtk("getscu", "-S", port, keys, "-od", str(out), "-v")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert len(list(out.iterdir())) == 2
    log = (result.stdout + result.stderr).decode(errors="replace")
    assert re.search(r"Number of Completed Suboperations\s*:\s*2", log), log
    assert re.search(r"Number of Failed Suboperations\s*:\s*0", log), log


def test_an_unregistered_calling_ae_is_rejected(listener, archive, tmp_path):
    _, port = listener
    assoc = associate(port, "STRANGER")
    assert assoc.is_rejected
    result = dcmtk("findscu", "-S", port, ["QueryRetrieveLevel=STUDY"], calling="STRANGER")
    assert result.returncode != 0


def test_a_missing_object_is_a_failed_suboperation_b000(listener, archive, storescp):
    _, port = listener
    broken = DicomInstance.objects.filter(study__study_instance_uid=archive["zoe"]).first()
    DicomInstance.objects.filter(pk=broken.pk).update(spool_path="", storage_key="gone.dcm")
    responses = move(port, "SIRONA", "STORESCP", archive["zoe"])
    final = responses[-1]
    assert final.Status == status.SUBOPS_COMPLETE_WITH_FAILURES
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 1)
    assert len(list(storescp.iterdir())) == 1


def test_a_latin1_device_gets_latin1_answers(listener, archive, tmp_path):
    _, port = listener
    # The device declares no character set and sends Latin-1 bytes, as its profile says.
    keys = ["QueryRetrieveLevel=STUDY", "PatientName=LÉVESQUE*".encode("latin-1")]
    (gen,) = findscu(port, "-S", keys, tmp_path / "latin1", calling="SIRONA")
    assert gen.SpecificCharacterSet == "ISO_IR 100"
    assert raw_name(gen) == "Lévesque^Geneviève".encode("latin-1")


def test_get_from_a_device_without_allow_get_is_refused(listener, archive):
    """The C-GET context is rejected at association time; the device's storage context
    stays (it may still store)."""
    _, port = listener
    DicomServer.objects.filter(ae_title="VATECH").update(allow_get=False)
    ae = AE(ae_title="VATECH")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    role = build_role(CTImageStorage, scp_role=True)
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM", ext_neg=[role])
    assert assoc.is_established
    assert [str(cx.abstract_syntax) for cx in assoc.rejected_contexts] == [
        str(StudyRootQueryRetrieveInformationModelGet)
    ]
    assert [str(cx.abstract_syntax) for cx in assoc.accepted_contexts] == [str(CTImageStorage)]
    assoc.release()
