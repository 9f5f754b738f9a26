"""The notifications' bell in Chromium (issue 9 §5): the count in the header, the dropdown,
a click on a notice marks it read for that person (another's bell keeps it) and opens its page
(the review queue), and the bell's htmx poll brings a new notice without reloading the page.
Screenshot: var/screenshots/bell-open.png.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from patients.models import Notification, Patient
from tests.browser import assert_clean

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _notice(practice, patient: Patient | None, count: int, **params) -> Notification:
    return Notification.objects.create(
        practice=practice,
        patient=patient,
        message="notice",
        params={"dicom_name": "TREMBLAY^ZOE", "needs_review": False, **params},
        count=count,
    )


def _log_in(page, web_server: str, username: str) -> None:
    page.goto(f"{web_server}/accounts/login/?next=/patients/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "nexrel-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{web_server}/patients/")


def test_bell_counts_and_a_click_marks_the_notice_read(web_server, browser_page, practice):
    page, problems = browser_page
    Notification.objects.filter(practice=practice).delete()
    patient = Patient.objects.filter(practice=practice).order_by("pk").first()
    assert patient is not None
    review = _notice(practice, None, 1, needs_review=True)
    xrays = _notice(practice, patient, 3)

    _log_in(page, web_server, "clinician")

    assert page.locator("#bell-count").inner_text() == "2"
    assert not page.locator("#notices").is_visible()  # closed until the bell is clicked
    page.click("#bell summary")
    assert page.locator("#notices").is_visible()
    item = page.locator(f'[data-notification="{xrays.pk}"] a')
    assert f"3 new X-rays for {patient.full_name}" in item.inner_text()
    assert "(needs review)" in page.locator(f'[data-notification="{review.pk}"]').inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "bell-open.png"))

    # The unidentified patient's notice leads to the review queue, which marks nothing read by
    # itself (a patient's page would): the click does.
    page.click(f'[data-notification="{review.pk}"] a')
    page.wait_for_url(f"{web_server}/review/")
    assert page.locator("#bell-count").inner_text() == "1"
    assert page.locator(f'[data-notification="{review.pk}"]').count() == 0

    # Read for the clinician only: the front desk, in its own browser, still has both.
    desk = page.context.browser.new_page(locale="en-CA")
    _log_in(desk, web_server, "frontdesk")
    assert desk.locator("#bell-count").inner_text() == "2"
    assert desk.locator(f'[data-notification="{review.pk}"]').count() == 1
    desk.close()

    # A new notice arrives: the bell's poll (every 20 s) shows it without a reload.
    _notice(practice, patient, 1)
    expect(page.locator("#bell-count")).to_have_text("2", timeout=30_000)
    assert_clean(page, problems)
