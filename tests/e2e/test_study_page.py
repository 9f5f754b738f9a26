"""The study page in Chromium (issue 9 §2): the images with their teeth, the header dump,
the downloads linked; no CSP violation. Screenshot: var/screenshots/study-page.png."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dicomnet.models import DicomInstance
from tests.browser import assert_clean
from tests.dicom_samples import ingest_dataset, intraoral

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_study_page_shows_images_teeth_and_header(web_server, browser_page, practice):
    page, problems = browser_page
    xray = ingest_dataset(practice, intraoral(PatientName="TREMBLAY^ZOE"))
    DicomInstance.objects.filter(pk=xray.pk).update(dental={"teeth": ["36", "37"]})
    path = f"/dicom/studies/{xray.study.pk}/"
    page.goto(f"{web_server}/accounts/login/?next={path}")
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", "nexrel-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{web_server}{path}")

    row = page.locator(f'tr[data-instance="{xray.sop_instance_uid}"]')
    assert row.locator("td.teeth").inner_text() == "36, 37"
    assert page.locator("#study-tags").get_by_text("SOP Instance UID").count() >= 1
    assert page.locator("#study-zip").get_attribute("href") == f"{path}study.zip"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "study-page.png"))
    download = page.request.get(f"{web_server}{path}study.zip")
    assert download.status == 200 and download.body()[:2] == b"PK"
    assert_clean(page, problems)
