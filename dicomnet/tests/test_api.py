"""The query/retrieve REST API: authentication, practice scoping, validation, job
progress, the OpenAPI schema, and C-FIND through a real Orthanc (and a refused peer)."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from dicomnet.models import DicomInstance, DicomServer, RetrieveJob
from dicomnet.qr import retrieve
from patients.models import Patient, User
from tests.dicom_samples import dicom_bytes, ingest_processed
from tests.fixtures import closed_port, peer_server

QUERY = "/api/dental/dicom/query"
IMPORT = "/api/dental/dicom/import"


def job_url(pk: int) -> str:
    return f"/api/dental/dicom/jobs/{pk}"


@pytest.fixture
def server(practice) -> DicomServer:
    return DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")


@pytest.fixture
def patient(practice) -> Patient:
    return Patient.objects.filter(practice=practice).first()


def post_import(client, **body):
    return client.post(IMPORT, body, content_type="application/json")


# Authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,url",
    [("get", QUERY + "?server=1"), ("post", IMPORT), ("get", job_url(1)), ("post", "/cancel")],
)
def test_anonymous_is_refused(client, practice, method, url):
    if url == "/cancel":
        url = job_url(1) + "/cancel"
    response = getattr(client, method)(url)
    assert response.status_code in (401, 403)
    assert not RetrieveJob.objects.exists()


def test_user_without_practice_is_refused(client_for, practice, server):
    client = client_for(User.objects.create_user("nobody", password="x"))
    response = client.get(QUERY, {"server": server.pk})
    assert response.status_code == 403
    assert "practice" in response.json()["detail"]


# Practice scoping ----------------------------------------------------------------------------


def test_another_practices_server_cannot_be_queried(clinician_client, other_practice):
    response = clinician_client.get(
        QUERY, {"server": other_practice.server.pk, "patient_name": "A*"}
    )
    assert response.status_code == 404


def test_another_practices_server_or_patient_cannot_be_imported_into(
    clinician_client, other_practice, server, patient
):
    uid = generate_uid()
    theirs = post_import(
        clinician_client,
        server=other_practice.server.pk,
        patient=patient.pk,
        study_instance_uids=[uid],
        method="move",
    )
    assert theirs.status_code == 404
    their_patient = post_import(
        clinician_client,
        server=server.pk,
        patient=other_practice.patient.pk,
        study_instance_uids=[uid],
        method="move",
    )
    assert their_patient.status_code == 404
    assert not RetrieveJob.objects.filter(study_instance_uids=[uid]).exists()


def test_another_practices_job_is_invisible_and_cannot_be_cancelled(
    clinician_client, other_practice
):
    assert clinician_client.get(job_url(other_practice.job.pk)).status_code == 404
    assert clinician_client.post(job_url(other_practice.job.pk) + "/cancel").status_code == 404
    other_practice.job.refresh_from_db()
    assert other_practice.job.status == RetrieveJob.Status.PENDING
    assert not other_practice.job.cancel_requested


# Validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params,field",
    [
        ({}, "server"),
        ({"server": "abc"}, "server"),
        ({"server": "1", "study_date": "2024-01-01"}, "study_date"),
        ({"server": "1", "study_date": "20240201-20240101"}, "study_date"),
        ({"server": "1", "patient_birth_date": "1980"}, "patient_birth_date"),
    ],
)
def test_query_bad_input_is_400_with_a_message(clinician_client, server, params, field):
    if params.get("server") == "1":
        params["server"] = str(server.pk)
    response = clinician_client.get(QUERY, params)
    assert response.status_code == 400
    assert response.json()[field]


def test_query_refused_when_the_server_does_not_allow_find(clinician_client, server):
    server.allow_find = False
    server.save()
    response = clinician_client.get(QUERY, {"server": server.pk, "patient_name": "A*"})
    assert response.status_code == 400
    assert "allow find is off" in response.json()["detail"]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"method": "push"}, "method"),
        ({"study_instance_uids": []}, "study_instance_uids"),
        ({"study_instance_uids": ["not a uid"]}, "study_instance_uids"),
        ({"patient": "x"}, "patient"),
    ],
)
def test_import_bad_input_is_400(clinician_client, server, patient, change, message):
    body = {
        "server": server.pk,
        "patient": patient.pk,
        "study_instance_uids": [generate_uid()],
        "method": "move",
        **change,
    }
    response = post_import(clinician_client, **body)
    assert response.status_code == 400
    assert message in response.json()
    assert not RetrieveJob.objects.exists()


def test_import_refused_when_the_server_does_not_allow_the_method(
    clinician_client, server, patient
):
    server.allow_get = False
    server.save()
    response = post_import(
        clinician_client,
        server=server.pk,
        patient=patient.pk,
        study_instance_uids=["1.2.3"],
        method="get",
    )
    assert response.status_code == 400
    assert "allow get is off" in response.json()["detail"]
    assert not RetrieveJob.objects.exists()


# Jobs --------------------------------------------------------------------------------------


def test_import_creates_a_job_for_the_chart(clinician_client, clinician, server, patient):
    uids = [generate_uid(), generate_uid()]
    response = post_import(
        clinician_client,
        server=server.pk,
        patient=patient.pk,
        study_instance_uids=uids,
        method="get",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    job = RetrieveJob.objects.get(pk=body["id"])
    assert (job.server, job.patient, job.requested_by) == (server, patient, clinician)
    assert job.method == "get" and job.study_instance_uids == uids
    assert body["status"] == "PENDING" and body["finished"] is False


def test_job_progress_is_reported(clinician_client, practice, server, patient):
    job = RetrieveJob.objects.create(
        practice=practice,
        server=server,
        patient=patient,
        study_instance_uids=["1.2.3"],
        status=RetrieveJob.Status.RUNNING,
        completed=7,
        failed=1,
        warning=2,
        remaining=30,
    )
    body = clinician_client.get(job_url(job.pk)).json()
    assert (body["status"], body["completed"], body["failed"], body["warning"]) == (
        "RUNNING",
        7,
        1,
        2,
    )
    assert body["remaining"] == 30 and body["finished"] is False

    RetrieveJob.objects.filter(pk=job.pk).update(
        status=RetrieveJob.Status.FAILED,
        remaining=0,
        error="remote system does not know our AE title NEXREL-CRM",
    )
    body = clinician_client.get(job_url(job.pk)).json()
    assert body["finished"] is True
    assert body["error"] == "remote system does not know our AE title NEXREL-CRM"


def test_cancel_a_pending_job(clinician_client, practice, server, patient):
    job = RetrieveJob.objects.create(
        practice=practice, server=server, patient=patient, study_instance_uids=["1.2.3"]
    )
    response = clinician_client.post(job_url(job.pk) + "/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    job.refresh_from_db()
    assert job.status == RetrieveJob.Status.CANCELLED


# Schema ------------------------------------------------------------------------------------


def test_schema_lists_the_paths(client, db):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/dental/dicom/query",
        "/api/dental/dicom/import",
        "/api/dental/dicom/jobs/{id}",
        "/api/dental/dicom/jobs/{id}/cancel",
    ]:
        assert path in paths, sorted(paths)
    query = paths["/api/dental/dicom/query"]["get"]
    assert {p["name"] for p in query["parameters"]} >= {"server", "patient_name", "study_date"}
    assert "502" in query["responses"]
    assert "201" in paths["/api/dental/dicom/import"]["post"]["responses"]


# Real peers --------------------------------------------------------------------------------


def test_refused_connection_is_502_with_the_reason(clinician_client, practice):
    server = peer_server(practice, closed_port(), "NOBODY")
    response = clinician_client.get(QUERY, {"server": server.pk, "patient_name": "A*"})
    assert response.status_code == 502
    assert "refused the connection" in response.json()["detail"]


@pytest.mark.integration
def test_query_orthanc_with_counts_and_imported_flag(clinician_client, practice, orthanc):
    orthanc.add_modality("nexrel", practice.ae_title, 11112)
    held_uid, new_uid, series_uid = generate_uid(), generate_uid(), generate_uid()
    for n in (1, 2):
        orthanc.upload(
            dicom_bytes(
                patient_id="P-42",
                patient_name="Bélanger^Hélène",
                birth_date="19800101",
                study_uid=new_uid,
                series_uid=series_uid,
                study_date="20200310",
                instance_number=n,
            )
        )
    held = dict(patient_id="P-42", patient_name="Bélanger^Hélène", study_uid=held_uid)
    orthanc.upload(dicom_bytes(**held, study_date="20190102"))
    ingest_processed(practice, **held)
    orthanc.upload(dicom_bytes(patient_id="X-1", patient_name="Autre^Personne"))
    server = peer_server(practice, orthanc.dicom_port, orthanc.ae_title)

    response = clinician_client.get(QUERY, {"server": server.pk, "patient_name": "Bélanger^H*"})
    assert response.status_code == 200, response.content
    body = response.json()
    studies = {s["study_instance_uid"]: s for s in body["studies"]}
    assert body["count"] == 2 and set(studies) == {held_uid, new_uid}
    new = studies[new_uid]
    assert new["patient_name"] == "Bélanger^Hélène"
    assert new["instance_count"] == 2 and new["series_count"] == 1
    assert new["study_date"] == "2020-03-10"
    assert (new["already_imported"], studies[held_uid]["already_imported"]) == (False, True)

    dated = clinician_client.get(
        QUERY, {"server": server.pk, "patient_id": "P-42", "study_date": "20200101-20201231"}
    ).json()
    assert [s["study_instance_uid"] for s in dated["studies"]] == [new_uid]


@pytest.mark.integration
def test_import_from_orthanc_by_c_get_reports_progress(clinician_client, practice, orthanc):
    """The job the API starts, run here as the worker would; the API reports its counts."""
    orthanc.add_modality("nexrel", practice.ae_title, 11112)
    patient = Patient.objects.get(practice=practice, chart_number="1002")
    study_uid, series_uid = generate_uid(), generate_uid()
    for n in (1, 2, 3):
        orthanc.upload(
            dicom_bytes(
                patient_id="OLD-1",
                patient_name="Bélanger^Étienne",
                study_uid=study_uid,
                series_uid=series_uid,
                instance_number=n,
            )
        )
    server = peer_server(practice, orthanc.dicom_port, orthanc.ae_title)
    before = DicomInstance.objects.filter(practice=practice).count()
    created = post_import(
        clinician_client,
        server=server.pk,
        patient=patient.pk,
        study_instance_uids=[study_uid],
        method="get",
    )
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]

    retrieve.run_job(job_id)

    body = clinician_client.get(job_url(job_id)).json()
    assert body["status"] == "COMPLETED", body
    assert (body["completed"], body["failed"], body["remaining"], body["finished"]) == (
        3,
        0,
        0,
        True,
    )
    assert DicomInstance.objects.filter(practice=practice).count() == before + 3
