"""Query/Retrieve SCU against real peers: Orthanc (C-FIND, C-MOVE and C-GET into a running
listener and worker) and DCMTK ``dcmqrscp`` (a move destination it does not know; echo
failures)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pydicom.uid import generate_uid

from dicomnet.models import DicomServer, DicomStudy, RetrieveJob
from dicomnet.net import association
from dicomnet.qr import retrieve, scu
from patients.models import Patient
from tests.dicom_samples import dicom_bytes, ingest_processed
from tests.fixtures import free_port, wait_for_port, wait_until
from tests.peers import stop_process

pytestmark = [pytest.mark.integration]


def study_bytes(
    *, name: str, patient_id: str, study_uid: str, count: int = 1, accession: str = ""
) -> list[bytes]:
    """``count`` images of one series, the name in UTF-8 (ISO_IR 192)."""
    series_uid = generate_uid()
    out = []
    for number in range(1, count + 1):
        ds = pydicom.dcmread(
            io.BytesIO(
                dicom_bytes(
                    patient_id=patient_id,
                    patient_name="X",
                    birth_date="19800214",
                    study_uid=study_uid,
                    series_uid=series_uid,
                    instance_number=number,
                )
            )
        )
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = name
        ds.AccessionNumber = accession
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


@pytest.fixture
def seeded(orthanc) -> dict[str, str]:
    """Two studies in Orthanc: Côté^Zoé (3 images) and Tremblay^Luc (2 images)."""
    studies = {"cote": generate_uid(), "tremblay": generate_uid()}
    for blob in study_bytes(
        name="Côté^Zoé", patient_id="EXT-1", study_uid=studies["cote"], count=3, accession="A1"
    ):
        orthanc.upload(blob)
    for blob in study_bytes(
        name="Tremblay^Luc", patient_id="EXT-2", study_uid=studies["tremblay"], count=2
    ):
        orthanc.upload(blob)
    return studies


@pytest.fixture
def orthanc_server(practice, orthanc) -> DicomServer:
    # Orthanc answers queries only from AEs it knows; C-MOVE tests set the listener's port.
    orthanc.add_modality("nexrel", settings.DICOM_AE_TITLE, free_port())
    return DicomServer.objects.create(
        practice=practice,
        name="Old PACS (Orthanc)",
        ae_title=orthanc.ae_title,
        host="127.0.0.1",
        port=orthanc.dicom_port,
        allow_store=True,
        allow_find=True,
        allow_move=True,
        allow_get=True,
    )


@pytest.fixture
def chart(practice) -> Patient:
    return Patient.objects.create(
        practice=practice, chart_number="C-4242", family_name="Côté", given_name="Zoé"
    )


# C-FIND ------------------------------------------------------------------------------------


def test_find_studies_with_accented_names(db, orthanc_server, seeded) -> None:
    found = scu.find_studies(orthanc_server, patient_name="Côté*")
    assert [r.study_instance_uid for r in found] == [seeded["cote"]]
    record = found[0]
    assert record.patient_name == "Côté^Zoé"
    assert record.patient_id == "EXT-1"
    assert record.accession_number == "A1"
    assert record.instance_count == 3
    assert record.series_count == 1
    assert record.already_imported is False

    everyone = scu.find_studies(orthanc_server, patient_name="*")
    assert {r.study_instance_uid for r in everyone} == set(seeded.values())
    assert scu.find_studies(orthanc_server, patient_id="EXT-2")[0].patient_name == "Tremblay^Luc"
    assert scu.find_studies(orthanc_server, accession="A1")[0].study_instance_uid == seeded["cote"]


def test_find_marks_studies_already_in_nexrel(db, practice, orthanc_server, seeded) -> None:
    ingest_processed(
        practice, patient_id="EXT-2", patient_name="Tremblay^Luc", study_uid=seeded["tremblay"]
    )
    found = {r.study_instance_uid: r for r in scu.find_studies(orthanc_server, patient_name="*")}
    assert found[seeded["tremblay"]].already_imported is True
    assert found[seeded["tremblay"]].nexrel_study_id == DicomStudy.objects.get().pk
    assert found[seeded["cote"]].already_imported is False


def test_find_patient_root_and_lower_levels(db, orthanc_server, seeded) -> None:
    patients = scu.find_studies(orthanc_server, level="PATIENT", patient_name="Côté^Zoé")
    assert [(p.patient_id, p.patient_name) for p in patients] == [("EXT-1", "Côté^Zoé")]

    series = scu.find_studies(orthanc_server, level="SERIES", study_instance_uid=seeded["cote"])
    assert len(series) == 1 and series[0].instance_count == 3
    images = scu.find_studies(
        orthanc_server,
        level="IMAGE",
        study_instance_uid=seeded["cote"],
        series_instance_uid=series[0].series_instance_uid,
    )
    assert sorted(i.instance_number for i in images) == [1, 2, 3]
    studies = scu.find_studies(orthanc_server, root="patient", patient_id="EXT-2")
    assert [s.study_instance_uid for s in studies] == [seeded["tremblay"]]


# C-MOVE / C-GET ----------------------------------------------------------------------------


def _imported(study_uid: str, count: int):
    study = DicomStudy.objects.filter(study_instance_uid=study_uid).first()
    if study is None or study.instances.filter(state="PROCESSED").count() < count:
        return None
    return study


def test_move_imports_through_listener_and_links_to_chosen_patient(
    orthanc, orthanc_server, seeded, chart, listener_factory, worker
) -> None:
    _, port = listener_factory()
    orthanc.add_modality("nexrel", settings.DICOM_AE_TITLE, port)
    job = retrieve.start_import(
        orthanc_server.practice,
        server=orthanc_server,
        study_uids=[seeded["cote"], seeded["tremblay"]],
        patient=chart,
        method="move",
    )
    wait_until(lambda: RetrieveJob.objects.get(pk=job.pk).finished_at is not None, timeout=60)
    job.refresh_from_db()
    assert job.status == RetrieveJob.Status.COMPLETED, job.error
    assert (job.completed, job.failed, job.warning, job.remaining) == (5, 0, 0, 0)
    cote = wait_until(lambda: _imported(seeded["cote"], 3), timeout=60)
    tremblay = wait_until(lambda: _imported(seeded["tremblay"], 2), timeout=60)
    # Both link to the chosen chart, even Tremblay whose name is not the patient's.
    for study in (cote, tremblay):
        study.refresh_from_db()
        assert study.patient == chart
        assert study.server == orthanc_server
    # A second run of the task changes nothing.
    assert retrieve.run_job(job.pk) == "skipped"


def test_get_imports_over_the_same_association(orthanc_server, seeded, chart, worker) -> None:
    job = retrieve.start_import(
        orthanc_server.practice,
        server=orthanc_server,
        study_uids=[seeded["cote"]],
        patient=chart,
        method="get",
    )
    # The queued task would do the same; run it here and now (idempotent claim).
    outcome = retrieve.run_job(job.pk)
    job.refresh_from_db()
    if outcome == "skipped":  # the worker took it first
        wait_until(lambda: RetrieveJob.objects.get(pk=job.pk).finished_at, timeout=60)
        job.refresh_from_db()
    assert job.status == RetrieveJob.Status.COMPLETED, job.error
    assert (job.completed, job.failed, job.remaining) == (3, 0, 0)
    study = wait_until(lambda: _imported(seeded["cote"], 3), timeout=60)
    assert study.patient == chart
    assert DicomStudy.objects.count() == 1


def test_cancel_a_running_move(orthanc, orthanc_server, practice, chart, listener_factory) -> None:
    study_uid = generate_uid()
    for blob in study_bytes(name="Long^Series", patient_id="EXT-9", study_uid=study_uid, count=40):
        orthanc.upload(blob)
    _, port = listener_factory()
    orthanc.add_modality("nexrel", settings.DICOM_AE_TITLE, port)
    job = RetrieveJob.objects.create(
        practice=practice, server=orthanc_server, patient=chart, study_instance_uids=[study_uid]
    )
    seen = []

    def cancel_after_first() -> bool:
        seen.append(1)
        if len(seen) == 1:
            RetrieveJob.objects.filter(pk=job.pk).update(status=RetrieveJob.Status.RUNNING)
            retrieve.cancel_job(job)
        return RetrieveJob.objects.get(pk=job.pk).cancel_requested

    reports = list(
        scu.move(orthanc_server, study_uids=[study_uid], should_cancel=cancel_after_first)
    )
    first, final = reports[0], reports[-1]
    assert not first.final and first.completed + first.failed + first.remaining == 40
    assert final.final and final.cancelled, final
    assert final.completed < 40
    assert retrieve.outcome_of(final) == RetrieveJob.Status.CANCELLED


def test_a_study_the_remote_does_not_hold_fails_the_job(db, orthanc_server, chart) -> None:
    job = RetrieveJob.objects.create(
        practice=orthanc_server.practice,
        server=orthanc_server,
        patient=chart,
        study_instance_uids=[generate_uid()],
    )
    assert retrieve.run_job(job.pk) == RetrieveJob.Status.FAILED
    job.refresh_from_db()
    # Orthanc answers 0xC000 for a study it does not hold; others succeed with nothing.
    assert "0xC000 (Unable to Process)" in job.error or "has no images" in job.error


def test_cancel_a_pending_job(db, orthanc_server, chart) -> None:
    job = RetrieveJob.objects.create(
        practice=orthanc_server.practice, server=orthanc_server, study_instance_uids=["1.2.3"]
    )
    retrieve.cancel_job(job)
    assert job.status == RetrieveJob.Status.CANCELLED
    assert retrieve.run_job(job.pk) == "skipped"


def test_start_import_refuses_what_it_cannot_do(db, practice, orthanc_server, chart) -> None:
    orthanc_server.allow_get = False
    orthanc_server.save()
    with pytest.raises(retrieve.ImportRefused, match="C-GET"):
        retrieve.start_import(
            practice, server=orthanc_server, study_uids=["1.2.3"], patient=chart, method="get"
        )
    with pytest.raises(retrieve.ImportRefused, match="no study"):
        retrieve.start_import(
            practice, server=orthanc_server, study_uids=[], patient=chart, method="move"
        )
    assert not RetrieveJob.objects.exists()


# DCMTK dcmqrscp ----------------------------------------------------------------------------

DCMQR_AE = "DCMQR"


@pytest.fixture
def dcmqrscp(tmp_path: Path) -> Iterator[int]:
    if not shutil.which("dcmqrscp"):
        pytest.skip("DCMTK not installed")
    port = free_port()
    storage = tmp_path / "dcmqr"
    storage.mkdir()
    config = tmp_path / "dcmqrscp.cfg"
    config.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n"
        # STORESCU may store (the test seeds with it); our own AE is unknown to it.
        "HostTable BEGIN\nstorer = (STORESCU, 127.0.0.1, 0)\nHostTable END\n"
        "VendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\n{DCMQR_AE} {storage} RW (20, 64mb) ANY\nAETable END\n"
    )
    log = open(tmp_path / "dcmqrscp.log", "wb")
    proc = subprocess.Popen(
        ["dcmqrscp", "-c", str(config), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port(port)
    yield port
    stop_process(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the children it forked per association
    log.close()


@pytest.fixture
def dcmqr_server(practice, dcmqrscp) -> DicomServer:
    return DicomServer.objects.create(
        practice=practice,
        name="Vendor archive",
        ae_title=DCMQR_AE,
        host="127.0.0.1",
        port=dcmqrscp,
        allow_find=True,
        allow_move=True,
    )


def test_move_to_a_destination_the_remote_does_not_know(db, dcmqr_server, chart, tmp_path) -> None:
    study_uid = generate_uid()
    image = tmp_path / "image.dcm"
    image.write_bytes(study_bytes(name="Côté^Zoé", patient_id="EXT-1", study_uid=study_uid)[0])
    subprocess.run(
        ["storescu", "-aec", DCMQR_AE, "127.0.0.1", str(dcmqr_server.port), str(image)],
        check=True,
        timeout=30,
    )
    job = RetrieveJob.objects.create(
        practice=dcmqr_server.practice,
        server=dcmqr_server,
        patient=chart,
        study_instance_uids=[study_uid],
    )
    assert retrieve.run_job(job.pk) == RetrieveJob.Status.FAILED
    job.refresh_from_db()
    assert job.status == RetrieveJob.Status.FAILED
    assert job.error.startswith(
        f"remote system does not know our AE title {settings.DICOM_AE_TITLE}: "
        "add it as a move destination on the remote side"
    )
    assert job.finished_at is not None


def test_echo_success(db, dcmqr_server) -> None:
    result = association.echo(dcmqr_server)
    assert result.ok and result.round_trip_ms is not None and result.error == ""


def test_echo_refused(db, practice) -> None:
    server = DicomServer(practice=practice, ae_title="NOBODY", host="127.0.0.1", port=free_port())
    result = association.echo(server)
    assert not result.ok
    assert "refused the connection" in result.error


def test_echo_timeout(db, practice) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        server = DicomServer(practice=practice, ae_title="SILENT", host="127.0.0.1", port=port)
        result = association.echo(server, timeout=1)
    assert not result.ok
    assert "did not answer" in result.error and "1 s" in result.error


def test_echo_rejected_with_reason(db, dcmqr_server) -> None:
    """Every time: dcmqrscp rejects and closes at once, which pynetdicom alone sometimes
    reports as a dropped connection (about 1 in 25 here)."""
    dcmqr_server.ae_title = "NOT-DCMQR"
    results = {(r.ok, r.error) for r in (association.echo(dcmqr_server) for _ in range(60))}
    assert results == {
        (
            False,
            f"NOT-DCMQR at 127.0.0.1:{dcmqr_server.port} rejected the association permanently: "
            "the called AE title is not recognised",
        )
    }


def test_find_decodes_answers_by_their_character_set(db, dcmqr_server, tmp_path) -> None:
    """A Latin-1 (ISO_IR 100) archive: the name comes back right, decoded by its own charset."""
    ds = pydicom.dcmread(
        io.BytesIO(study_bytes(name="X", patient_id="L-1", study_uid=generate_uid())[0])
    )
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Lévesque^Geneviève"
    image = tmp_path / "latin1.dcm"
    ds.save_as(image, enforce_file_format=True)
    assert "Lévesque".encode("latin-1") in image.read_bytes()
    subprocess.run(
        ["storescu", "-aec", DCMQR_AE, "127.0.0.1", str(dcmqr_server.port), str(image)],
        check=True,
        timeout=30,
    )
    found = scu.find_studies(dcmqr_server, patient_id="L-1")
    assert [r.patient_name for r in found] == ["Lévesque^Geneviève"]
