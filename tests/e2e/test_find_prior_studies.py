"""In Chromium against the real web server and a real Orthanc: "Find prior studies" from the
chart, import one, and watch the job page follow the import (htmx polling) to its end. The
same pages without a browser: dicomnet/tests/test_qr_views.py."""

from __future__ import annotations

import shutil

import pytest
from pydicom.uid import generate_uid

from dicomnet.models import DicomServer, RetrieveJob
from dicomnet.qr import retrieve
from patients.models import Patient
from tests.browser import assert_clean
from tests.dicom_samples import dicom_bytes
from tests.fixtures import peer_server

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]


def test_browser_finds_and_imports_with_live_progress(web_server, browser_page, practice, orthanc):
    """In Chromium: chart → find → tick a study → import; the job page follows the job by
    htmx polling (no inline script, no CSP violation) until it shows the final counts."""
    page, problems = browser_page
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
