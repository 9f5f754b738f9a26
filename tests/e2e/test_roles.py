"""Roles in Chromium (issue 9): the front desk is refused the viewer, with the friendly 403
page and no image, and sees the calendar. Screenshots go to var/screenshots/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dicom_samples import ingest_dataset, intraoral

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def login_as(page, web_server: str, username: str, path: str) -> None:
    page.goto(f"{web_server}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "nexrel-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{web_server}{path}")


def test_front_desk_is_refused_the_viewer(web_server, browser_page, practice):
    page, problems = browser_page
    xray = ingest_dataset(practice, intraoral())
    path = f"/viewer/studies/{xray.study.study_instance_uid}/"
    login_as(page, web_server, "frontdesk", path)

    assert page.locator("#error-403").is_visible()
    assert "not allowed" in page.locator("h1").inner_text()
    assert page.locator("img, canvas").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "roles-frontdesk-viewer-403.png"), full_page=True)
    assert page.evaluate("window.__cspViolations") == []
    assert [p for p in problems if "403" not in p] == []  # the refusal itself, nothing else

    # The image itself is refused too, and the chart shows the demographics without images.
    image = page.request.get(f"{web_server}/dicom/instances/{xray.pk}/thumbnail.webp")
    assert image.status == 403
    page.goto(f"{web_server}/patients/{xray.study.patient_id or practice.patients.first().pk}/")
    assert page.locator("#patient-name").is_visible()
    assert page.locator("img.thumb").count() == 0
    page.goto(f"{web_server}/calendar/")
    assert page.url.endswith("/calendar/")
