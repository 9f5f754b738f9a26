"""The operations dashboard in Chromium, as the practice admin: five charts of the last 30
days, the devices, a failure retried. Screenshot: var/screenshots/ops-dashboard.png."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from django.utils import timezone

from dicomnet.models import DicomInstance, DicomServer
from tests.browser import assert_clean
from tests.dicom_samples import ingest_processed
from tests.e2e.test_roles import SCREENSHOTS, login_as

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]


def test_the_dashboard_and_a_retry(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 1100})
    sensor = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    now = timezone.now()
    for n in range(12):
        instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
        at = now - dt.timedelta(days=n % 6, hours=n)
        DicomInstance.objects.filter(pk=instance.pk).update(
            received_at=at, processed_at=at + dt.timedelta(seconds=1 + n % 4), server=sensor
        )
    DicomInstance.objects.filter(pk=instance.pk).update(
        state=DicomInstance.State.ERROR, error="RuntimeError: preview failed"
    )
    login_as(page, web_server, "practiceadmin", "/ops/")
    assert page.locator(".ops-chart").count() == 5
    assert page.locator(".ops-chart rect").count() > 5
    assert "CARESTREAM" in page.inner_text("#ops-devices")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "ops-dashboard.png"), full_page=True)
    page.click(f"#ops-failures tr[data-instance='{instance.pk}'] button.retry")
    page.wait_for_url("**/ops/")
    assert page.locator(f"#ops-failures tr[data-instance='{instance.pk}']").count() == 0
    assert_clean(page, problems)
