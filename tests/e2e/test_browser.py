"""In Chromium against the real web server and a real django-q2 cluster: log in, upload an
X-ray through the page, and see it, linked and previewed, on the patient's page."""

from __future__ import annotations

import shutil
import time

import pytest
from django.utils import timezone

from dicomnet.models import DicomInstance, DicomStudy
from patients.models import AccessLog, Patient
from tests.browser import assert_clean
from tests.dicom_samples import write_dicom

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]


def test_login_upload_and_see_the_xray_on_the_patient_page(
    worker, web_server, browser_page, tmp_path
):
    page, problems = browser_page
    xray = write_dicom(
        tmp_path / "bitewing.dcm",
        patient_id="1001",
        patient_name="COTE^ZOE",
        birth_date="19880314",
        study_date=timezone.localdate().strftime("%Y%m%d"),
    )
    started = time.monotonic()

    # 1. Every page needs a login; the login page takes the demo clinician.
    page.goto(f"{web_server}/patients/")
    assert page.url.startswith(f"{web_server}/accounts/login/?next=")
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # static CSS served
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", "nexrel-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{web_server}/patients/")
    assert_clean(page, problems)

    # 2. Upload the file through the upload page, reached from the navigation.
    page.click("nav a[href='/dicom/upload/']")
    page.set_input_files("input[name=files]", str(xray))
    page.click("form.card button[type=submit]")
    result = page.locator("#upload-results tr.ok")
    assert result.inner_text().split("\t") == ["bitewing.dcm", "received"]
    assert_clean(page, problems)

    # 3. Find the patient with an unaccented search, open her page.
    page.click("nav a[href='/patients/']")
    page.fill("input[name=q]", "cote")
    page.click("form.search button")
    page.click("text=Côté, Zoé")
    patient_url = page.url
    assert page.inner_text("#patient-name") == "Zoé Côté"

    # 4. The worker processes it: reload until the thumbnail is there, then check it loaded.
    deadline = time.monotonic() + 25
    while not page.locator("img.thumb").count():
        assert time.monotonic() < deadline, f"no thumbnail; worker log:\n{worker.output()[-3000:]}"
        time.sleep(0.5)
        page.goto(patient_url)
    page.wait_for_function(
        "() => { const i = document.querySelector('img.thumb'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    size = page.evaluate(
        "(() => { const i = document.querySelector('img.thumb'); "
        "return [i.naturalWidth, i.naturalHeight]; })()"
    )
    assert 0 < max(size) <= 256
    study = page.locator("section.study")
    assert study.locator(".status-processed").inner_text() == "Processed"
    assert "Bitewings - four radiographic images" in study.inner_text()  # today's appointment
    response = page.goto(patient_url)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert_clean(page, problems)
    elapsed = time.monotonic() - started

    # What the browser showed is what the database holds.
    cote = Patient.objects.get(practice__ae_title="NEXREL-CRM", chart_number="1001")
    db_study = DicomStudy.objects.get(patient=cote)
    assert db_study.status == DicomStudy.Status.PROCESSED
    assert db_study.appointment.procedure_code == "D0274"
    instance = DicomInstance.objects.get(study=db_study)
    assert instance.state == DicomInstance.State.PROCESSED
    assert instance.peer_address == "upload by clinician"
    assert AccessLog.objects.filter(patient=cote, action="view_patient_images").exists()
    assert elapsed < 40
