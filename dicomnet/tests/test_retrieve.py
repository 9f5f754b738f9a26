"""The import service without a network: validation, claim, cancel, outcome, and the link of
a retrieved study to the job's patient."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from dicomnet.dimse import status
from dicomnet.ingest.linking import link_study, link_to_patient
from dicomnet.models import DicomServer, RetrieveJob
from dicomnet.qr import retrieve, scu
from patients.models import Patient
from tests.dicom_samples import ingest_processed


@pytest.fixture
def server(practice) -> DicomServer:
    return DicomServer.objects.create(
        practice=practice, name="Old PACS", ae_title="OLDPACS", allow_move=True, allow_get=False
    )


@pytest.fixture
def chart(practice) -> Patient:
    return Patient.objects.create(
        practice=practice, chart_number="C-77", family_name="Roy", given_name="Anne"
    )


def test_start_import_records_a_pending_job(db, practice, server, chart) -> None:
    job = retrieve.start_import(
        practice,
        server=server,
        study_uids=[" 1.2.3 ", "1.2.3", "1.2.4"],
        patient=chart,
        method="move",
    )
    assert job.status == RetrieveJob.Status.PENDING
    assert job.study_instance_uids == ["1.2.3", "1.2.4"]
    assert job.patient == chart and job.method == "move"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"method": "get"}, "C-GET"),
        ({"method": "fax"}, "unknown method"),
        ({"uids": []}, "no study"),
        ({"uids": ["1." * 40]}, "longer than 64"),
        ({"other_patient": True}, "another practice"),
        ({"other_server": True}, "another practice"),
    ],
)
def test_start_import_refuses(practice, other_practice, server, chart, change, message) -> None:
    patient, target = chart, server
    if change.get("other_patient"):
        patient = other_practice.patient
    if change.get("other_server"):
        target = other_practice.server  # move allowed: refused for being another practice's
    with pytest.raises(retrieve.ImportRefused, match=message):
        retrieve.start_import(
            practice,
            server=target,
            study_uids=change.get("uids", ["1.2.3"]),
            patient=patient,
            method=change.get("method", "move"),
        )
    assert not RetrieveJob.objects.filter(practice=practice).exists()


def test_claim_is_taken_once(db, practice, server) -> None:
    job = RetrieveJob.objects.create(practice=practice, server=server, study_instance_uids=["1"])
    assert retrieve.claim(job.pk) is True
    assert retrieve.claim(job.pk) is False
    assert retrieve.run_job(job.pk) == "skipped"
    job.refresh_from_db()
    assert job.status == RetrieveJob.Status.RUNNING and job.started_at is not None


def test_a_job_whose_worker_died_is_taken_over_after_the_task_timeout(db, practice, server) -> None:
    job = RetrieveJob.objects.create(practice=practice, server=server, study_instance_uids=["1"])
    assert retrieve.claim(job.pk) is True
    recent = timezone.now() - dt.timedelta(seconds=60)
    RetrieveJob.objects.filter(pk=job.pk).update(claimed_at=recent)
    assert retrieve.claim(job.pk) is False, "a live run keeps its job"
    lost = timezone.now() - dt.timedelta(seconds=retrieve.RETRIEVE_TASK_TIMEOUT + 61)
    RetrieveJob.objects.filter(pk=job.pk).update(claimed_at=lost)
    assert retrieve.claim(job.pk) is True
    job.refresh_from_db()
    assert job.status == RetrieveJob.Status.RUNNING and job.claimed_at > recent


def test_cancel_pending_and_running(db, practice, server) -> None:
    pending = RetrieveJob.objects.create(practice=practice, server=server)
    assert retrieve.cancel_job(pending).status == RetrieveJob.Status.CANCELLED
    running = RetrieveJob.objects.create(
        practice=practice, server=server, status=RetrieveJob.Status.RUNNING
    )
    running = retrieve.cancel_job(running)
    assert running.status == RetrieveJob.Status.RUNNING and running.cancel_requested


def test_a_failed_association_fails_the_job_in_words(db, practice, server) -> None:
    server.host, server.port = "127.0.0.1", 9  # discard port: nothing listens
    server.save()
    job = RetrieveJob.objects.create(practice=practice, server=server, study_instance_uids=["1"])
    assert retrieve.run_job(job.pk) == RetrieveJob.Status.FAILED
    job.refresh_from_db()
    assert "refused the connection" in job.error and job.finished_at is not None


@pytest.mark.parametrize(
    "progress, outcome",
    [
        (scu.RetrieveProgress(completed=3, final=True, status=status.SUCCESS), "COMPLETED"),
        (
            scu.RetrieveProgress(
                completed=2, failed=1, final=True, status=status.SUBOPS_COMPLETE_WITH_FAILURES
            ),
            "WARNING",
        ),
        (scu.RetrieveProgress(completed=2, final=True, missing=("1.2",)), "WARNING"),
        (scu.RetrieveProgress(failed=3, final=True, status=0xA702), "FAILED"),
        (scu.RetrieveProgress(final=True, error="no"), "FAILED"),
        (scu.RetrieveProgress(completed=1, final=True, cancelled=True), "CANCELLED"),
    ],
)
def test_outcome(progress, outcome) -> None:
    assert retrieve.outcome_of(progress) == outcome


def test_date_range_and_identifier() -> None:
    assert scu._date_range((dt.date(2020, 1, 2), None)) == "20200102-"
    assert scu._date_range((None, dt.date(2020, 1, 2))) == "-20200102"
    assert scu._date_range(" 20200101-20201231 ") == "20200101-20201231"
    ds = scu.find_identifier("STUDY", patient_name="Côté*")
    assert ds.SpecificCharacterSet == "ISO_IR 192" and ds.QueryRetrieveLevel == "STUDY"
    assert "NumberOfStudyRelatedInstances" in ds and "SOPInstanceUID" not in ds


def test_retrieved_study_links_to_the_jobs_patient(db, practice, server, chart) -> None:
    study_uid = generate_uid()
    RetrieveJob.objects.create(
        practice=practice, server=server, patient=chart, study_instance_uids=["9.9", study_uid]
    )
    study = ingest_processed(
        practice, patient_id="ELSEWHERE-1", patient_name="Nobody^Known", study_uid=study_uid
    ).study
    assert study.patient == chart
    assert "imported from Old PACS" in study.status_reason
    # Another study, not asked for, is matched as usual (nobody: needs review).
    other = ingest_processed(practice, patient_id="ELSEWHERE-2", patient_name="Nobody^Else").study
    assert other.patient is None


def test_a_manual_link_wins_over_the_job(db, practice, server, chart) -> None:
    study_uid = generate_uid()
    RetrieveJob.objects.create(
        practice=practice, server=server, patient=chart, study_instance_uids=[study_uid]
    )
    study = ingest_processed(practice, patient_id="E-1", patient_name="A^B", study_uid=study_uid)
    someone = Patient.objects.exclude(pk=chart.pk).filter(practice=practice).first()
    link_to_patient(study.study, someone)
    assert link_study(study.study).patient == someone
