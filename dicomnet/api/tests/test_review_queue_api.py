"""GET /api/dental/review/: the studies waiting for review, read-only, for the front desk
and clinicians (``view_review_queue``), refused to a practice admin; each with its DICOM
demographics, reason, source and candidates; the practice's own only, by pages."""

from __future__ import annotations

import pytest
from django.utils import translation

from dicomnet.ingest.local import ingest_now
from dicomnet.models import DicomServer, DicomStudy
from patients.models import AccessLog, Patient
from patients.names import display_person_name
from tests.dicom_samples import ingest_dataset, intraoral, to_bytes

QUEUE = "/api/dental/review/"


def waiting(practice, *, server: DicomServer | None = None, **elements) -> DicomStudy:
    """A study the matcher could not link, received from ``server`` (or uploaded)."""
    data = to_bytes(intraoral(**elements))
    calling_ae = server.ae_title if server else ""
    study = ingest_now(practice, data, server=server, calling_ae=calling_ae).study
    study.refresh_from_db()
    assert study.status == DicomStudy.Status.NEEDS_REVIEW, study.status_reason
    return study


@pytest.fixture
def queue(practice) -> dict:
    """Two studies waiting (one from the Sirona naming Zoé Côté without a date of birth, one
    uploaded with no name) and one linked, which is not in the queue."""
    sirona = DicomServer.objects.get(practice=practice, ae_title="SIRONA")
    named = waiting(
        practice, server=sirona, patient_id="X99", patient_name="COTE^ZOE", PatientSex="F"
    )
    nameless = waiting(practice)
    ingest_dataset(practice, intraoral(patient_id="1001", patient_name="Côté^Zoé"))
    return {"named": named, "nameless": nameless, "sirona": sirona}


@pytest.mark.parametrize("role_user", ["frontdesk", "clinician"])
def test_the_queue_for_the_front_desk_and_clinicians(request, role_user, client_for, queue):
    user = request.getfixturevalue(role_user)
    response = client_for(user).get(QUEUE)
    assert response.status_code == 200
    body = response.json()
    named, nameless = queue["named"], queue["nameless"]
    assert body["count"] == 2 and body["next"] is None
    assert [s["id"] for s in body["results"]] == [named.pk, nameless.pk]  # oldest first

    first = body["results"][0]
    zoe = Patient.objects.get(practice=named.practice, chart_number="1001")
    assert {k: first[k] for k in ("study_instance_uid", "study_date", "modality")} == {
        "study_instance_uid": named.study_instance_uid,
        "study_date": "2024-01-02",
        "modality": "IO",
    }
    assert (first["patient_name"], first["display_name"]) == (
        "COTE^ZOE",
        display_person_name("COTE^ZOE"),
    )
    assert (first["patient_id"], first["patient_birth_date"], first["patient_sex"]) == (
        "X99",
        None,
        "F",
    )
    assert first["instance_count"] == 1
    assert first["reason_code"] == "no_birth_date" and first["reason"] == named.reason_text
    assert first["source"] == {
        "device": queue["sirona"].pk,
        "device_name": "Sirona Orthophos",
        "calling_ae": "SIRONA",
        "peer_address": "",
    }
    assert first["candidates"] == [
        {
            "patient": zoe.pk,
            "chart_number": "1001",
            "name": zoe.full_name,
            "birth_date": "1988-03-14",
            "why": named.match_candidates[0]["why"],
            "why_code": "same_name",
        }
    ]

    second = body["results"][1]
    assert (second["patient_name"], second["reason_code"], second["candidates"]) == (
        "",
        "no_name",
        [],
    )
    assert second["source"] == {
        "device": None,
        "device_name": "",
        "calling_ae": "",
        "peer_address": "",
    }
    # Read as the page reads it: each study shown is in the access log.
    logged = AccessLog.objects.filter(user=user, action="view_review_study")
    assert set(logged.values_list("object_ref", flat=True)) == {
        f"study:{named.pk}",
        f"study:{nameless.pk}",
    }


def test_a_practice_admin_and_an_anonymous_caller_are_refused(
    client_for, practice_admin, client, queue
):
    refused = client_for(practice_admin).get(QUEUE)
    assert refused.status_code == 403 and refused["Content-Type"] == "application/json"
    assert client.get(QUEUE).status_code == 401


def test_the_reasons_and_candidates_are_in_the_readers_language(client_for, clinician, queue):
    client = client_for(clinician)
    client.cookies["django_language"] = "fr"
    first = client.get(QUEUE, HTTP_ACCEPT_LANGUAGE="fr").json()["results"][0]
    with translation.override("fr"):
        french = queue["named"].reason_text
    assert first["reason"] == french != queue["named"].status_reason  # stored in English
    assert first["candidates"][0]["why"] != queue["named"].match_candidates[0]["why"]


def test_a_candidate_whose_chart_is_gone_is_left_out(clinician_client, queue):
    Patient.objects.filter(practice=queue["named"].practice, chart_number="1001").delete()
    first = clinician_client.get(QUEUE).json()["results"][0]
    assert first["id"] == queue["named"].pk and first["candidates"] == []


def test_another_practices_studies_are_not_listed(
    clinician_client, client_for, other_practice, queue
):
    theirs = waiting(other_practice.practice, patient_id="B7", patient_name="AUTRE^B")
    mine = {s["id"] for s in clinician_client.get(QUEUE).json()["results"]}
    assert mine == {queue["named"].pk, queue["nameless"].pk}
    listed = client_for(other_practice.user).get(QUEUE).json()
    assert [s["id"] for s in listed["results"]] == [theirs.pk]


def test_the_queue_by_pages(clinician_client, practice, queue):
    third = waiting(practice, patient_id="X100", patient_name="TROISIEME^T")
    page = clinician_client.get(QUEUE, {"page_size": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2
    assert page["next"] and page["previous"] is None
    rest = clinician_client.get(page["next"]).json()
    assert [s["id"] for s in rest["results"]] == [third.pk] and rest["next"] is None
    ids = [s["id"] for s in page["results"]] + [s["id"] for s in rest["results"]]
    assert ids == [queue["named"].pk, queue["nameless"].pk, third.pk]
    assert clinician_client.get(QUEUE, {"page": 9}).status_code == 404


def test_the_queue_is_in_the_schema(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/dental/review/"]["get"]
    assert operation["operationId"] == "dental_review_queue"
    assert {p["name"] for p in operation["parameters"]} == {"page", "page_size"}
    study = schema["components"]["schemas"]["WaitingStudy"]["properties"]
    assert {"patient_name", "patient_id", "patient_birth_date", "patient_sex", "reason"} <= set(
        study
    )
    assert study["candidates"]["type"] == "array"
    candidate = schema["components"]["schemas"]["Candidate"]["properties"]
    assert set(candidate) == {"patient", "chart_number", "name", "birth_date", "why", "why_code"}
    assert set(schema["components"]["schemas"]["Source"]["properties"]) == {
        "device",
        "device_name",
        "calling_ae",
        "peer_address",
    }
