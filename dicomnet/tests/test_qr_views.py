"""The query/retrieve pages: "Find prior studies" from the chart (pre-filled, scoped,
listing a real Orthanc's studies), the import job page and the partial it polls, and the
practice admin's DICOM devices page with "Test connection" against real peers. The same in
Chromium: tests/e2e/test_find_prior_studies.py."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from pydicom.uid import generate_uid

from dicomnet.models import DicomServer, RetrieveJob
from patients.models import Patient
from tests.dicom_samples import dicom_bytes
from tests.fixtures import closed_port, peer_server


@pytest.fixture
def patient(practice) -> Patient:
    return Patient.objects.get(practice=practice, chart_number="1002")  # Étienne Bélanger


def test_chart_links_to_the_find_page(clinician_client, patient):
    page = clinician_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert f'href="/dicom/find/{patient.pk}/"' in page


def test_find_page_is_prefilled_from_the_chart(clinician_client, patient):
    response = clinician_client.get(reverse("qr_find", args=[patient.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="Bélanger^Étienne*"' in page
    assert f'value="{patient.birth_date:%Y-%m-%d}"' in page
    assert "Find prior studies" in page
    assert "<script>" not in page  # CSP: script-src 'self', no inline script


def test_find_page_is_scoped_to_the_practice(clinician_client, other_practice, patient):
    theirs = reverse("qr_find", args=[other_practice.patient.pk])
    assert clinician_client.get(theirs).status_code == 404
    page = clinician_client.get(reverse("qr_find", args=[patient.pk])).content.decode()
    assert "PACS B" not in page  # another practice's server is not offered
    response = clinician_client.get(
        reverse("qr_find", args=[patient.pk]),
        {"server": other_practice.server.pk, "patient_name": "A*"},
    )
    assert response.status_code == 400


def test_find_page_needs_a_login(client, patient):
    response = client.get(reverse("qr_find", args=[patient.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_find_page_shows_why_the_query_failed(clinician_client, practice, patient):
    server = peer_server(practice, closed_port(), "NOBODY")
    response = clinician_client.get(
        reverse("qr_find", args=[patient.pk]), {"server": server.pk, "patient_name": "B*"}
    )
    assert response.status_code == 502
    assert "refused the connection" in response.content.decode()


@pytest.mark.integration
def test_find_page_lists_orthancs_studies(clinician_client, practice, patient, orthanc):
    orthanc.add_modality("nexrel", practice.ae_title, 11112)
    uid = generate_uid()
    orthanc.upload(
        dicom_bytes(
            patient_id="OLD-7",
            patient_name="Bélanger^Étienne",
            birth_date=f"{patient.birth_date:%Y%m%d}",
            study_uid=uid,
            study_date="20180521",
        )
    )
    orthanc.upload(
        dicom_bytes(patient_id="OLD-8", patient_name="Bélanger^Étienne", birth_date="19000101")
    )
    orthanc.upload(dicom_bytes(patient_id="OLD-9", patient_name="Côté^Zoé"))
    server = peer_server(practice, orthanc.dicom_port, orthanc.ae_title, allow_move=False)
    response = clinician_client.get(
        reverse("qr_find", args=[patient.pk]),
        {
            "server": server.pk,
            "patient_name": "Bélanger^Étienne*",
            "patient_birth_date": f"{patient.birth_date:%Y-%m-%d}",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    # The other Bélanger (born 1900) and Côté are not listed.
    assert re.findall(r'name="study_instance_uids" value="([\d.]+)"', page) == [uid]
    assert "OLD-7" in page and "OLD-8" not in page and "OLD-9" not in page
    assert '<option value="get">' in page and '<option value="move">' not in page


def test_import_starts_a_job_and_shows_its_page(clinician_client, practice, patient, clinician):
    server = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    uid = generate_uid()
    response = clinician_client.post(
        reverse("qr_import", args=[patient.pk]),
        {"server": server.pk, "study_instance_uids": [uid], "method": "move"},
    )
    job = RetrieveJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("qr_job", args=[job.pk])
    assert (job.patient, job.requested_by, job.study_instance_uids) == (patient, clinician, [uid])
    page = clinician_client.get(response["Location"]).content.decode()
    assert f'hx-get="{reverse("qr_job_progress", args=[job.pk])}"' in page
    assert 'hx-trigger="every 1s"' in page
    assert "/static/vendor/htmx.min.js" in page


def test_import_refused_is_shown(clinician_client, practice, patient):
    server = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    server.allow_move = False
    server.save()
    response = clinician_client.post(
        reverse("qr_import", args=[patient.pk]),
        {"server": server.pk, "study_instance_uids": ["1.2.3"], "method": "move"},
    )
    assert response.status_code == 400
    assert "allow move is off" in response.content.decode()
    assert not RetrieveJob.objects.exists()


def test_progress_partial_polls_until_the_job_finishes(clinician_client, practice, patient):
    server = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    job = RetrieveJob.objects.create(
        practice=practice,
        server=server,
        patient=patient,
        study_instance_uids=["1.2.3"],
        status=RetrieveJob.Status.RUNNING,
        completed=3,
        remaining=5,
    )
    url = reverse("qr_job_progress", args=[job.pk])
    running = clinician_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "Received 3" in running and "remaining 5" in running
    assert "hx-trigger" in running and "Cancel" in running

    RetrieveJob.objects.filter(pk=job.pk).update(
        status=RetrieveJob.Status.FAILED, error="the remote system does not know our AE title"
    )
    done = clinician_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in done
    assert "the remote system does not know our AE title" in done


def test_cancel_from_the_page(clinician_client, practice, patient):
    server = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    job = RetrieveJob.objects.create(
        practice=practice, server=server, patient=patient, study_instance_uids=["1.2.3"]
    )
    response = clinician_client.post(
        reverse("qr_job_cancel", args=[job.pk]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "Cancelled" in response.content.decode()
    job.refresh_from_db()
    assert job.status == RetrieveJob.Status.CANCELLED


def test_jobs_of_another_practice_are_404(clinician_client, other_practice):
    theirs = other_practice.job.pk
    for name in ("qr_job", "qr_job_progress"):
        assert clinician_client.get(reverse(name, args=[theirs])).status_code == 404
    assert clinician_client.post(reverse("qr_job_cancel", args=[theirs])).status_code == 404
    other_practice.job.refresh_from_db()
    assert other_practice.job.status == RetrieveJob.Status.PENDING


# DICOM devices -----------------------------------------------------------------------------


@pytest.fixture
def practice_admin_client(client_for, practice_admin):
    """The devices are the practice admin's (patients/roles.py); a clinician gets 403."""
    return client_for(practice_admin)


def test_servers_page_lists_only_the_practices_devices(practice_admin_client, other_practice):
    response = practice_admin_client.get(reverse("dicom_servers"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "CARESTREAM" in page and "PACSB" not in page
    assert reverse("dicom_servers") in practice_admin_client.get(reverse("home")).content.decode()


def test_servers_page_is_for_practice_admins(client_for, assistant, clinician, frontdesk):
    for user in (assistant, clinician, frontdesk):
        client = client_for(user)
        assert client.get(reverse("dicom_servers")).status_code == 403
        assert client.post(reverse("dicom_server_add"), {"name": "X"}).status_code == 403


def test_add_and_edit_a_device(practice_admin_client, practice, other_practice):
    response = practice_admin_client.post(
        reverse("dicom_server_add"),
        {"name": "Old PACS", "ae_title": "OLDPACS", "host": "10.0.0.5", "port": "4242",
         "is_active": "on", "allow_find": "on", "allow_move": "on", "vendor_profile": "generic"},
    )  # fmt: skip
    assert response.status_code == 302
    server = DicomServer.objects.get(ae_title="OLDPACS")
    assert server.practice == practice and server.allow_find and not server.allow_get

    duplicate = practice_admin_client.post(
        reverse("dicom_server_add"),
        {"name": "Again", "ae_title": "OLDPACS", "host": "h", "port": "1",
         "vendor_profile": "generic"},
    )  # fmt: skip
    assert duplicate.status_code == 400
    assert "Another device of this practice has this AE title" in duplicate.content.decode()

    edit = reverse("dicom_server_edit", args=[server.pk])
    assert 'value="OLDPACS"' in practice_admin_client.get(edit).content.decode()
    practice_admin_client.post(
        edit,
        {"name": "Old PACS", "ae_title": "OLDPACS", "host": "10.0.0.6", "port": "4242",
         "vendor_profile": "generic"},
    )  # fmt: skip
    server.refresh_from_db()
    assert server.host == "10.0.0.6" and not server.is_active
    theirs = reverse("dicom_server_edit", args=[other_practice.server.pk])
    assert practice_admin_client.get(theirs).status_code == 404


@pytest.mark.integration
def test_test_connection_shows_the_round_trip(practice_admin_client, practice, echo_peer):
    server = peer_server(practice, echo_peer, "ECHOPEER")
    url = reverse("dicom_server_test", args=[server.pk])
    partial = practice_admin_client.post(url, headers={"HX-Request": "true"}).content.decode()
    assert re.search(r"Connected: [\d.]+ ms round trip", partial), partial
    page = practice_admin_client.post(url).content.decode()
    assert re.search(r"Connected: [\d.]+ ms round trip", page)
    assert 'id="servers"' in page


def test_test_connection_shows_why_it_failed(practice_admin_client, practice, other_practice):
    server = peer_server(practice, closed_port(), "NOBODY")
    partial = practice_admin_client.post(
        reverse("dicom_server_test", args=[server.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "Failed:" in partial and "refused the connection" in partial
    theirs = reverse("dicom_server_test", args=[other_practice.server.pk])
    assert practice_admin_client.post(theirs).status_code == 404


@pytest.mark.integration
def test_admin_action_test_connection(client_for, practice_admin, practice, echo_peer):
    admin_client = client_for(practice_admin)  # devices are the practice admin's
    good = peer_server(practice, echo_peer, "ECHOPEER")
    bad = peer_server(practice, closed_port(), "NOBODY")
    response = admin_client.post(
        reverse("admin:dicomnet_dicomserver_changelist"),
        {"action": "test_connection", "_selected_action": [good.pk, bad.pk]},
    )
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("ECHOPEER" in m and "ms round trip" in m for m in messages), messages
    assert any("NOBODY" in m and "refused the connection" in m for m in messages), messages
