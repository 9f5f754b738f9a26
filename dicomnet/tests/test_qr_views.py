"""The query/retrieve pages: "Find prior studies" from the chart (pre-filled, scoped,
listing a real Orthanc's studies), the import job page and the partial it polls, and the
practice admin's DICOM devices page with "Test connection" against real peers."""

# The shared fixtures are imported from qr_peers, so their parameters "redefine" them.
# ruff: noqa: F811

from __future__ import annotations

import re
import shutil

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from pydicom.uid import generate_uid

from dicomnet.models import DicomServer, RetrieveJob
from dicomnet.qr import retrieve
from dicomnet.tests.qr_peers import (  # noqa: F401 (fixtures)
    clinician,
    closed_port,
    other,
    peer_server,
    storescp,
)
from patients.models import Patient, User
from tests.dicom_samples import dicom_bytes
from tests.e2e.test_browser import assert_clean, browser_page, web_server  # noqa: F401


@pytest.fixture
def browser(client, clinician):
    client.force_login(clinician)
    return client


@pytest.fixture
def patient(practice) -> Patient:
    return Patient.objects.get(practice=practice, chart_number="1002")  # Étienne Bélanger


def test_chart_links_to_the_find_page(browser, patient):
    page = browser.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert f'href="/dicom/find/{patient.pk}/"' in page


def test_find_page_is_prefilled_from_the_chart(browser, patient):
    response = browser.get(reverse("qr_find", args=[patient.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="Bélanger^Étienne*"' in page
    assert f'value="{patient.birth_date:%Y-%m-%d}"' in page
    assert "Find prior studies" in page
    assert "<script>" not in page  # CSP: script-src 'self', no inline script


def test_find_page_is_scoped_to_the_practice(browser, client, other, patient):
    assert browser.get(reverse("qr_find", args=[other.patient.pk])).status_code == 404
    page = browser.get(reverse("qr_find", args=[patient.pk])).content.decode()
    assert "PACS B" not in page  # another practice's server is not offered
    response = browser.get(
        reverse("qr_find", args=[patient.pk]), {"server": other.server.pk, "patient_name": "A*"}
    )
    assert response.status_code == 400


def test_find_page_needs_a_login(client, patient):
    response = client.get(reverse("qr_find", args=[patient.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_find_page_shows_why_the_query_failed(browser, practice, patient):
    server = peer_server(practice, closed_port(), "NOBODY")
    response = browser.get(
        reverse("qr_find", args=[patient.pk]), {"server": server.pk, "patient_name": "B*"}
    )
    assert response.status_code == 502
    assert "refused the connection" in response.content.decode()


@pytest.mark.integration
def test_find_page_lists_orthancs_studies(browser, practice, patient, orthanc):
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
    response = browser.get(
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


def test_import_starts_a_job_and_shows_its_page(browser, practice, patient, clinician):
    server = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    uid = generate_uid()
    response = browser.post(
        reverse("qr_import", args=[patient.pk]),
        {"server": server.pk, "study_instance_uids": [uid], "method": "move"},
    )
    job = RetrieveJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("qr_job", args=[job.pk])
    assert (job.patient, job.requested_by, job.study_instance_uids) == (patient, clinician, [uid])
    page = browser.get(response["Location"]).content.decode()
    assert f'hx-get="{reverse("qr_job_progress", args=[job.pk])}"' in page
    assert 'hx-trigger="every 1s"' in page
    assert "/static/vendor/htmx.min.js" in page


def test_import_refused_is_shown(browser, practice, patient):
    server = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    server.allow_move = False
    server.save()
    response = browser.post(
        reverse("qr_import", args=[patient.pk]),
        {"server": server.pk, "study_instance_uids": ["1.2.3"], "method": "move"},
    )
    assert response.status_code == 400
    assert "allow move is off" in response.content.decode()
    assert not RetrieveJob.objects.exists()


def test_progress_partial_polls_until_the_job_finishes(browser, practice, patient):
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
    running = browser.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "Received 3" in running and "remaining 5" in running
    assert "hx-trigger" in running and "Cancel" in running

    RetrieveJob.objects.filter(pk=job.pk).update(
        status=RetrieveJob.Status.FAILED, error="the remote system does not know our AE title"
    )
    done = browser.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in done
    assert "the remote system does not know our AE title" in done


def test_cancel_from_the_page(browser, practice, patient):
    server = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    job = RetrieveJob.objects.create(
        practice=practice, server=server, patient=patient, study_instance_uids=["1.2.3"]
    )
    response = browser.post(reverse("qr_job_cancel", args=[job.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Cancelled" in response.content.decode()
    job.refresh_from_db()
    assert job.status == RetrieveJob.Status.CANCELLED


def test_jobs_of_another_practice_are_404(browser, other):
    for name in ("qr_job", "qr_job_progress"):
        assert browser.get(reverse(name, args=[other.job.pk])).status_code == 404
    assert browser.post(reverse("qr_job_cancel", args=[other.job.pk])).status_code == 404
    other.job.refresh_from_db()
    assert other.job.status == RetrieveJob.Status.PENDING


# DICOM devices -----------------------------------------------------------------------------


def test_servers_page_lists_only_the_practices_devices(browser, other):
    response = browser.get(reverse("dicom_servers"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "CARESTREAM" in page and "PACSB" not in page
    assert reverse("dicom_servers") in browser.get(reverse("home")).content.decode()


def test_servers_page_is_for_practice_admins(client, practice):
    staff = User.objects.create_user("assistant", practice=practice, password="x")
    client.force_login(staff)
    assert client.get(reverse("dicom_servers")).status_code == 403
    assert client.post(reverse("dicom_server_add"), {"name": "X"}).status_code == 403


def test_add_and_edit_a_device(browser, practice, other):
    response = browser.post(
        reverse("dicom_server_add"),
        {"name": "Old PACS", "ae_title": "OLDPACS", "host": "10.0.0.5", "port": "4242",
         "is_active": "on", "allow_find": "on", "allow_move": "on", "vendor_profile": "generic"},
    )  # fmt: skip
    assert response.status_code == 302
    server = DicomServer.objects.get(ae_title="OLDPACS")
    assert server.practice == practice and server.allow_find and not server.allow_get

    duplicate = browser.post(
        reverse("dicom_server_add"),
        {"name": "Again", "ae_title": "OLDPACS", "host": "h", "port": "1",
         "vendor_profile": "generic"},
    )  # fmt: skip
    assert duplicate.status_code == 400
    assert "Another device of this practice has this AE title" in duplicate.content.decode()

    edit = reverse("dicom_server_edit", args=[server.pk])
    assert 'value="OLDPACS"' in browser.get(edit).content.decode()
    browser.post(
        edit,
        {"name": "Old PACS", "ae_title": "OLDPACS", "host": "10.0.0.6", "port": "4242",
         "vendor_profile": "generic"},
    )  # fmt: skip
    server.refresh_from_db()
    assert server.host == "10.0.0.6" and not server.is_active
    assert browser.get(reverse("dicom_server_edit", args=[other.server.pk])).status_code == 404


@pytest.mark.integration
def test_test_connection_shows_the_round_trip(browser, practice, storescp):
    server = peer_server(practice, storescp, "ECHOPEER")
    url = reverse("dicom_server_test", args=[server.pk])
    partial = browser.post(url, headers={"HX-Request": "true"}).content.decode()
    assert re.search(r"Connected: [\d.]+ ms round trip", partial), partial
    page = browser.post(url).content.decode()
    assert re.search(r"Connected: [\d.]+ ms round trip", page)
    assert 'id="servers"' in page


def test_test_connection_shows_why_it_failed(browser, practice, other):
    server = peer_server(practice, closed_port(), "NOBODY")
    partial = browser.post(
        reverse("dicom_server_test", args=[server.pk]), headers={"HX-Request": "true"}
    ).content.decode()
    assert "Failed:" in partial and "refused the connection" in partial
    assert browser.post(reverse("dicom_server_test", args=[other.server.pk])).status_code == 404


@pytest.mark.integration
def test_admin_action_test_connection(browser, practice, storescp):
    good = peer_server(practice, storescp, "ECHOPEER")
    bad = peer_server(practice, closed_port(), "NOBODY")
    response = browser.post(
        reverse("admin:dicomnet_dicomserver_changelist"),
        {"action": "test_connection", "_selected_action": [good.pk, bad.pk]},
    )
    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("ECHOPEER" in m and "ms round trip" in m for m in messages), messages
    assert any("NOBODY" in m and "refused the connection" in m for m in messages), messages


@pytest.mark.e2e
@pytest.mark.integration
@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed")
def test_browser_finds_and_imports_with_live_progress(
    web_server, browser_page, practice, orthanc, settings
):
    """In Chromium: chart → find → tick a study → import; the job page follows the job by
    htmx polling (no inline script, no CSP violation) until it shows the final counts."""
    page, problems = browser_page
    # The web server checks passwords with the real hashers, not this folder's fast one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    clinician = User.objects.get(username="clinician")
    clinician.set_password("nexrel-demo")
    clinician.save()
    orthanc.add_modality("nexrel", practice.ae_title, 11112)
    patient = Patient.objects.get(practice=practice, chart_number="1002")
    uid, series_uid = generate_uid(), generate_uid()
    for n in (1, 2):
        orthanc.upload(
            dicom_bytes(
                patient_id="OLD-7",
                patient_name="Bélanger^Étienne",
                study_uid=uid,
                series_uid=series_uid,
                study_date="20180521",
                instance_number=n,
            )
        )
    DicomServer.objects.filter(practice=practice).update(allow_find=False)
    peer_server(practice, orthanc.dicom_port, orthanc.ae_title)

    page.goto(f"{web_server}/accounts/login/?next=/patients/{patient.pk}/")
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", "nexrel-demo")
    page.click("button[type=submit]")
    page.click("#find-prior")
    assert page.input_value("input[name=patient_name]") == "Bélanger^Étienne*"
    page.fill("input[name=patient_birth_date]", "")
    page.click("#qr-query button[type=submit]")
    page.check(f"input[name=study_instance_uids][value='{uid}']")
    page.select_option("select[name=method]", "get")
    page.click("#qr-import button[type=submit]")
    page.wait_for_url(f"{web_server}/dicom/jobs/*/")
    assert page.get_attribute("#qr-job", "data-status") == "PENDING"

    job = RetrieveJob.objects.get()
    assert (job.patient_id, job.method, job.study_instance_uids) == (patient.pk, "get", [uid])
    retrieve.run_job(job.pk)  # the worker's task, here, while the page keeps polling

    page.wait_for_selector("#qr-job[data-status='COMPLETED']")
    assert "Received 2" in page.inner_text("#qr-job")
    assert page.get_attribute("#qr-job", "hx-trigger") is None  # polling stopped
    assert_clean(page, problems)
