"""The REST API of issue 9 §4 (/api/dental/): patients, appointments, studies, images,
review decisions and notifications; each as the clinician, the front desk and another
practice's clinician, by session and by bearer token; pages and filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from pydicom.uid import generate_uid

from dicomnet.models import DicomInstance, DicomStudy, StudyAssignment
from patients.models import AccessLog, Appointment, Notification, Patient
from patients.tokens import create_token
from tests.dicom_samples import ingest_dataset, ingest_processed, intraoral

API = "/api/dental"


@pytest.fixture
def xray(practice) -> DicomInstance:
    return ingest_dataset(practice, intraoral(PixelSpacing=[0.1, 0.1]))


@pytest.fixture
def cote(practice) -> Patient:
    return Patient.objects.get(practice=practice, chart_number="1001")


@pytest.fixture
def b_client(client_for, other_practice):
    return client_for(other_practice.user)


def waiting(practice, **kwargs) -> DicomStudy:
    kwargs = {"patient_id": "X99", "patient_name": "LESTRADE^G", **kwargs}
    study = ingest_processed(practice, **kwargs).study
    study.refresh_from_db()
    assert study.status == DicomStudy.Status.NEEDS_REVIEW, study.status_reason
    return study


def bearer(user) -> dict:
    _, raw = create_token(user, "test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


# Authentication ------------------------------------------------------------------------------


def test_anonymous_is_401_with_the_bearer_challenge(client, practice):
    response = client.get(f"{API}/patients/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_authenticates_its_user_with_its_role(client, clinician, frontdesk, xray):
    assert client.get(f"{API}/patients/", **bearer(clinician)).status_code == 200
    assert client.get(f"{API}/instances/{xray.pk}/", **bearer(clinician)).status_code == 200
    assert client.get(f"{API}/instances/{xray.pk}/", **bearer(frontdesk)).status_code == 403


def test_a_bad_token_is_401_never_the_session(clinician_client):
    response = clinician_client.get(f"{API}/patients/", HTTP_AUTHORIZATION="Bearer nxr_nope")
    assert response.status_code == 401
    assert "bearer token" in response.json()["detail"]


def test_a_token_post_needs_no_csrf_token(clinician, practice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(f"{API}/notifications/read", **bearer(clinician))
    assert response.status_code == 200
    session = Client(enforce_csrf_checks=True)
    session.force_login(clinician)
    assert session.post(f"{API}/notifications/read").status_code == 403  # CSRF


# Patients ------------------------------------------------------------------------------------


def test_patients_are_the_practices_paginated(clinician_client, practice, other_practice):
    body = clinician_client.get(f"{API}/patients/", {"page_size": 2}).json()
    assert body["count"] == Patient.objects.filter(practice=practice).count()
    assert len(body["results"]) == 2 and body["next"] and body["previous"] is None
    second = clinician_client.get(body["next"]).json()
    assert {p["id"] for p in second["results"]}.isdisjoint({p["id"] for p in body["results"]})
    every = clinician_client.get(f"{API}/patients/", {"page_size": 200}).json()["results"]
    assert other_practice.patient.pk not in {p["id"] for p in every}


def test_patients_are_searched_and_filtered_by_chart(clinician_client, cote):
    found = clinician_client.get(f"{API}/patients/", {"q": "zoe cote"}).json()["results"]
    assert [p["id"] for p in found] == [cote.pk]
    by_chart = clinician_client.get(f"{API}/patients/", {"chart_number": "1001"}).json()
    assert [p["chart_number"] for p in by_chart["results"]] == ["1001"]
    assert clinician_client.get(f"{API}/patients/", {"q": "zzzzqx"}).json()["count"] == 0


def test_a_patient_for_the_front_desk_and_404_for_another_practice(
    client_for, frontdesk, b_client, cote
):
    body = client_for(frontdesk).get(f"{API}/patients/{cote.pk}/").json()
    assert (body["chart_number"], body["family_name"]) == ("1001", cote.family_name)
    assert AccessLog.objects.filter(user=frontdesk, action="view_patient", patient=cote).exists()
    assert b_client.get(f"{API}/patients/{cote.pk}/").status_code == 404


# Appointments --------------------------------------------------------------------------------


def test_appointments_by_days_and_patient(client_for, frontdesk, practice, cote, b_client):
    day = dt.date(2031, 3, 4)
    start = timezone.make_aware(dt.datetime.combine(day, dt.time(10, 0)))
    mine = Appointment.objects.create(
        practice=practice, patient=cote, start=start, end=start + dt.timedelta(minutes=30)
    )
    client = client_for(frontdesk)
    one_day = {"date_from": "2031-03-04", "date_to": "2031-03-04"}
    assert [a["id"] for a in client.get(f"{API}/appointments/", one_day).json()["results"]] == [
        mine.pk
    ]
    later = client.get(f"{API}/appointments/", {"date_from": "2031-03-05"}).json()
    assert mine.pk not in {a["id"] for a in later["results"]}
    by_patient = client.get(f"{API}/appointments/", {"patient": cote.pk, "page_size": 200})
    assert all(a["patient"] == cote.pk for a in by_patient.json()["results"])
    assert mine.pk in {a["id"] for a in by_patient.json()["results"]}
    assert client.get(f"{API}/appointments/", {"date_from": "4 mars"}).status_code == 400
    assert b_client.get(f"{API}/appointments/", one_day).json()["count"] == 0


# Studies and images --------------------------------------------------------------------------


def test_studies_filtered_by_patient_status_and_date(clinician_client, practice, xray, b_client):
    study = xray.study
    review = waiting(practice)
    listed = clinician_client.get(f"{API}/studies/").json()["results"]
    assert {study.pk, review.pk} <= {s["id"] for s in listed}
    needs = clinician_client.get(f"{API}/studies/", {"status": "NEEDS_REVIEW"}).json()
    assert review.pk in {s["id"] for s in needs["results"]}
    assert {s["status"] for s in needs["results"]} == {"NEEDS_REVIEW"}
    if study.linked_patient_id:
        mine = clinician_client.get(f"{API}/studies/", {"patient": study.linked_patient_id})
        assert review.pk not in {s["id"] for s in mine.json()["results"]}
    day = study.study_date.isoformat()
    dated = clinician_client.get(f"{API}/studies/", {"date_from": day, "date_to": day}).json()
    assert study.pk in {s["id"] for s in dated["results"]}
    assert clinician_client.get(f"{API}/studies/", {"status": "LOST"}).status_code == 400
    assert b_client.get(f"{API}/studies/").json()["count"] == 0


def test_the_front_desk_gets_no_images(client_for, frontdesk, xray):
    client = client_for(frontdesk)
    for url in (
        f"{API}/studies/",
        f"{API}/studies/{xray.study_id}/",
        f"{API}/instances/{xray.pk}/",
        f"{API}/instances/{xray.pk}/preview",
        f"{API}/instances/{xray.pk}/file",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response["Content-Type"] == "application/json"


def test_another_practices_image_is_404(b_client, xray):
    for url in ("/", "/preview", "/file"):
        assert b_client.get(f"{API}/instances/{xray.pk}{url}").status_code == 404, url


def test_an_instance_and_its_preview(clinician_client, clinician, xray):
    body = clinician_client.get(f"{API}/instances/{xray.pk}/").json()
    assert (body["sop_instance_uid"], body["study"], body["preview"]) == (
        xray.sop_instance_uid,
        xray.study_id,
        True,
    )
    response = clinician_client.get(f"{API}/instances/{xray.pk}/preview", HTTP_ACCEPT="image/*")
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    data = b"".join(response.streaming_content)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert AccessLog.objects.filter(
        user=clinician, action="view_image", object_ref=f"instance:{xray.pk}"
    ).exists()


def test_the_stored_dicom_is_streamed_and_logged(clinician_client, clinician, xray):
    response = clinician_client.get(
        f"{API}/instances/{xray.pk}/file", HTTP_ACCEPT="application/dicom"
    )
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    assert response.streaming
    assert f"{xray.sop_instance_uid}.dcm" in response["Content-Disposition"]
    with default_storage.open(xray.storage_key, "rb") as stored:
        assert b"".join(response.streaming_content) == stored.read()
    log = AccessLog.objects.get(user=clinician, action="download_dicom")
    assert log.object_ref == f"instance:{xray.pk}"


def test_no_preview_or_stored_object_is_404(clinician_client, xray):
    DicomInstance.objects.filter(pk=xray.pk).update(preview_key="", storage_key="", spool_path="")
    assert clinician_client.get(f"{API}/instances/{xray.pk}/preview").status_code == 404
    assert clinician_client.get(f"{API}/instances/{xray.pk}/file").status_code == 404


# Review decisions ----------------------------------------------------------------------------


def test_assign_then_undo(clinician_client, practice, cote):
    study = waiting(practice)
    response = clinician_client.post(
        f"{API}/review/assign",
        {"studies": [study.pk], "patient": cote.pk},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["patient"], body["studies"]) == (cote.pk, [study.pk])
    study.refresh_from_db()
    assert study.patient == cote and study.status == DicomStudy.Status.PROCESSED
    assert StudyAssignment.objects.get(study=study).batch.hex == body["batch"].replace("-", "")

    undone = clinician_client.post(f"{API}/review/batches/{body['batch']}/undo")
    assert undone.status_code == 200 and undone.json() == {"studies": [study.pk]}
    study.refresh_from_db()
    assert study.patient is None and study.status == DicomStudy.Status.NEEDS_REVIEW
    again = clinician_client.post(f"{API}/review/batches/{body['batch']}/undo")
    assert again.status_code == 400 and "already undone" in again.json()["detail"]


def test_create_a_patient_from_the_study(clinician_client, practice):
    study = waiting(practice, patient_name="NOUVEAU^PAUL")
    response = clinician_client.post(
        f"{API}/review/create-patient",
        {"studies": [study.pk], "chart_number": "X99"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    patient = Patient.objects.get(practice=practice, chart_number="X99")
    assert response.json()["patient"] == patient.pk and patient.family_name == "Nouveau"
    taken = clinician_client.post(
        f"{API}/review/create-patient",
        {"studies": [waiting(practice, patient_id="Y1").pk], "chart_number": "X99"},
        content_type="application/json",
    )
    assert taken.status_code == 400 and "taken" in taken.json()["detail"]


def test_review_decisions_are_scoped_and_for_clinicians(
    client_for, frontdesk, clinician_client, b_client, practice, other_practice, cote
):
    mine = waiting(practice)
    theirs = waiting(other_practice.practice)
    assign = f"{API}/review/assign"

    def post(client, studies, patient):
        body = {"studies": studies, "patient": patient}
        return client.post(assign, body, content_type="application/json").status_code

    assert post(client_for(frontdesk), [mine.pk], cote.pk) == 403
    assert post(clinician_client, [theirs.pk], cote.pk) == 404
    assert post(clinician_client, [mine.pk], other_practice.patient.pk) == 404
    assert post(b_client, [mine.pk], other_practice.patient.pk) == 404
    assert post(clinician_client, [], cote.pk) == 400
    assert post(clinician_client, ["x"], cote.pk) == 400
    mine.refresh_from_db()
    assert mine.status == DicomStudy.Status.NEEDS_REVIEW
    assert post(clinician_client, [mine.pk], cote.pk) == 200
    batch = StudyAssignment.objects.get(study=mine).batch
    assert b_client.post(f"{API}/review/batches/{batch}/undo").status_code == 404


def test_undo_of_an_unknown_batch_is_404(clinician_client):
    import uuid

    assert clinician_client.post(f"{API}/review/batches/{uuid.uuid4()}/undo").status_code == 404


# Notifications -------------------------------------------------------------------------------


def test_notifications_unread_and_all_then_read(client_for, frontdesk, practice, b_client):
    client = client_for(frontdesk)
    client.post(f"{API}/notifications/read")
    new = Notification.objects.create(practice=practice, message="a study")
    unread = client.get(f"{API}/notifications/", {"unread": "true"}).json()
    assert [n["id"] for n in unread["results"]] == [new.pk]
    assert client.get(f"{API}/notifications/").json()["count"] == (
        Notification.objects.filter(practice=practice).count()
    )
    assert b_client.post(f"{API}/notifications/{new.pk}/read").status_code == 404
    assert b_client.get(f"{API}/notifications/").json()["count"] == 0

    response = client.post(f"{API}/notifications/{new.pk}/read")
    assert response.status_code == 200 and response.json()["read_at"]
    assert client.get(f"{API}/notifications/", {"unread": "true"}).json()["count"] == 0
    Notification.objects.create(practice=practice, message="another")
    assert client.post(f"{API}/notifications/read").json() == {"marked": 1}
    assert client.post(f"{API}/notifications/read").json() == {"marked": 0}


def test_notifications_read_state_is_the_callers(client, clinician, frontdesk, practice):
    """Read by the front desk's token, still unread for the clinician; more images of the
    study make it unread again for the front desk."""
    desk, dentist = bearer(frontdesk), bearer(clinician)
    client.post(f"{API}/notifications/read", **desk)
    client.post(f"{API}/notifications/read", **dentist)
    xray = {"study_uid": generate_uid(), "patient_id": "1001", "patient_name": "COTE^ZOE"}
    notice = ingest_dataset(practice, intraoral(**xray)).study.notification

    response = client.post(f"{API}/notifications/{notice.pk}/read", **desk)
    assert response.status_code == 200 and response.json()["read_at"]
    unread = client.get(f"{API}/notifications/", {"unread": "true"}, **desk).json()
    assert unread["count"] == 0
    unread = client.get(f"{API}/notifications/", {"unread": "true"}, **dentist).json()
    assert [(n["id"], n["read_at"]) for n in unread["results"]] == [(notice.pk, None)]
    listed = client.get(f"{API}/notifications/", **desk).json()["results"]
    assert [n["read_at"] is not None for n in listed if n["id"] == notice.pk] == [True]

    ingest_dataset(practice, intraoral(**xray))  # a second X-ray of the study
    unread = client.get(f"{API}/notifications/", {"unread": "true"}, **desk).json()
    assert [(n["id"], n["count"], n["read_at"]) for n in unread["results"]] == [
        (notice.pk, 2, None)
    ]


# Schema --------------------------------------------------------------------------------------


def test_the_endpoints_are_in_the_schema(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    for path in [
        "/api/dental/patients/",
        "/api/dental/patients/{id}/",
        "/api/dental/appointments/",
        "/api/dental/studies/",
        "/api/dental/studies/{id}/",
        "/api/dental/instances/{id}/",
        "/api/dental/instances/{id}/preview",
        "/api/dental/instances/{id}/file",
        "/api/dental/review/assign",
        "/api/dental/review/create-patient",
        "/api/dental/review/batches/{batch}/undo",
        "/api/dental/notifications/",
        "/api/dental/notifications/read",
        "/api/dental/notifications/{id}/read",
    ]:
        assert path in paths, sorted(paths)
    studies = paths["/api/dental/studies/"]["get"]
    names = {p["name"] for p in studies["parameters"]}
    assert names >= {"page", "page_size", "patient", "status", "date_from", "date_to"}
    assert (
        "application/dicom"
        in paths["/api/dental/instances/{id}/file"]["get"]["responses"]["200"]["content"]
    )
    assert {"bearerToken": []} in paths["/api/dental/patients/"]["get"]["security"]
