"""The privacy officer's audit page in Chromium (issue 10 §3), in French: who saw Zoé Côté's
X-rays, then the register of communications. Screenshots: var/screenshots/audit-*.png."""

from __future__ import annotations

import shutil

import pytest

from patients.models import AuditEvent, Patient
from tests.browser import assert_clean
from tests.dicom_samples import ingest_processed
from tests.e2e.test_roles import SCREENSHOTS, login_as

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]


def test_who_saw_her_x_rays_in_french(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    # The dentist opens her chart (its thumbnails load too).
    login_as(page, web_server, "clinician", f"/patients/{cote.pk}/")
    page.wait_for_selector("img.thumb")
    page.click("form[action$='/accounts/logout/'] button")
    page.wait_for_url("**/accounts/login/**")
    # The practice admin, in French, asks who saw them.
    login_as(page, web_server, "practiceadmin", "/audit/")
    page.click("button:has-text('Français')")
    page.wait_for_selector("html[lang^=fr]")
    page.fill("#id_patient", "cote")
    page.select_option("#id_kind", "images")
    page.click("#audit-search button[type=submit]")
    page.wait_for_selector("#audit-events tbody tr")
    rows = page.locator("#audit-events tbody tr")
    assert rows.count() >= 2
    assert all("clinician" in rows.nth(i).inner_text() for i in range(rows.count()))
    assert "Zoé Côté" in rows.first.inner_text()
    assert "Journal d'audit" in page.inner_text("h1")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "audit-who-saw.png"), full_page=True)
    csv = page.request.get(f"{web_server}/audit/{page.get_attribute('#audit-csv', 'href')}")
    assert csv.status == 200 and "Zoé Côté" in csv.text()
    assert AuditEvent.objects.filter(event_id="110101", username="practiceadmin").exists()

    page.click("#communications-link")
    page.wait_for_selector("#communications")
    page.screenshot(path=str(SCREENSHOTS / "audit-communications.png"), full_page=True)
    assert_clean(page, problems)
