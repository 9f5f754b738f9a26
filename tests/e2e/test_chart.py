"""The patient's chart in Chromium: demographics, upcoming and past appointments, the image
timeline (device, teeth, mount fill), and the prior/current comparison opened from it, with
zoom, pan and window/level synchronised between the two images.
Screenshots: var/screenshots/chart-*.png and compare-*.png."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest
from django.utils import timezone

from dicomnet.models import DicomInstance, DicomServer
from patients.models import Appointment, Patient
from tests.browser import assert_clean
from tests.dental_samples import tooth_item
from tests.dicom_samples import ingest_dataset, intraoral
from tests.e2e.test_viewer import SCREENSHOTS, login

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]


def periapical(patient: Patient, *, study_date: str, seed: int, teeth: list[str], bits: int = 12):
    """A periapical of ``patient`` (12-bit, or 8-bit) showing ``teeth``: a crown-like blob
    whose brightness differs by ``seed`` (prior and current are not the same image)."""
    ds = intraoral(
        patient_id=patient.chart_number,
        patient_name=f"{patient.family_name}^{patient.given_name}",
        study_date=study_date,
        size=256,
    )
    y, x = np.mgrid[0:320, 0:240]
    blob = ((y - 160) / 120) ** 2 + ((x - 120) / 80) ** 2 < 1
    pixels = np.where(blob, 2400 + 300 * seed, 700) + 600 * y / 320
    ds.Rows, ds.Columns = pixels.shape
    if bits == 8:
        ds.PixelData = (pixels / 16).astype(np.uint8).tobytes()
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.WindowCenter, ds.WindowWidth = 128, 256
    else:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
        ds.BitsStored, ds.HighBit = 12, 11
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PrimaryAnatomicStructureSequence = [tooth_item(t) for t in teeth]
    return ds


@pytest.fixture
def chart_patient(practice):
    patient = Patient.objects.create(
        practice=practice,
        chart_number="CMP-1",
        family_name="Bélanger",
        given_name="Zoé",
        birth_date=dt.date(1988, 3, 14),
        sex="F",
        health_card_number="BELZ88531412",
    )
    now = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    for days, code, what in ((-400, "02111", "Periapical"), (14, "01202", "Recall exam")):
        Appointment.objects.create(
            practice=practice,
            patient=patient,
            start=now + dt.timedelta(days=days),
            end=now + dt.timedelta(days=days, minutes=30),
            procedure_code=code,
            procedure_description=what,
            provider="Dre Gagnon",
        )
    sensor = DicomServer.objects.create(
        practice=practice, name="Sensor op. 2", ae_title="SENSOR2", host="127.0.0.1", port=104
    )
    # As the listener records them: the current image from a registered device, the prior
    # from a device that was never registered (its AE title is all that is known).
    for n, (date, ae, device) in enumerate(
        (("20241015", "OLDSENSOR", None), ("20260105", "SENSOR2", sensor))
    ):
        instance = ingest_dataset(
            practice, periapical(patient, study_date=date, seed=n, teeth=["36", "37"])
        )
        DicomInstance.objects.filter(pk=instance.pk).update(calling_ae=ae, server=device)
    return patient


def test_chart_shows_demographics_appointments_and_timeline(
    web_server, browser_page, chart_patient
):
    page, problems = browser_page
    page.set_viewport_size({"width": 1300, "height": 1000})
    login(page, web_server, f"/patients/{chart_patient.pk}/")
    demographics = page.inner_text("#demographics")
    assert "CMP-1" in demographics and "1988-03-14" in demographics
    assert "BELZ 8853 1412" in demographics
    assert "Recall exam" in page.inner_text("#upcoming")
    assert "Periapical" in page.inner_text("#past")
    studies = page.locator(".timeline .study")
    assert studies.count() == 2
    # Newest first, each with its teeth (FDI, the practice's default notation).
    assert studies.nth(0).locator("time").first.get_attribute("datetime") == "2026-01-05"
    assert "36 37" in studies.nth(0).locator(".study-teeth").inner_text()
    assert "36 37" in studies.nth(0).locator(".thumb-teeth").inner_text()
    assert "Sensor op. 2" in studies.nth(0).locator(".study-device").inner_text()
    assert "OLDSENSOR" in studies.nth(1).locator(".study-device").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "chart-timeline.png"), full_page=True)
    assert_clean(page, problems)


VOI = "(i) => window.nexrelCompare.viewports[i].getProperties().voiRange"
ZOOM = "(i) => window.nexrelCompare.viewports[i].getZoom()"


def test_compare_prior_and_current_side_by_side_in_sync(web_server, browser_page, chart_patient):
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 850})
    login(page, web_server, f"/patients/{chart_patient.pk}/")
    assert page.is_disabled("#compare-open")
    boxes = page.locator("input[name=image]")
    assert boxes.count() == 2
    boxes.nth(0).check()
    assert page.is_disabled("#compare-open")
    boxes.nth(1).check()
    page.click("#compare-open")
    page.wait_for_url("**/viewer/compare/?image=*")
    for side in (0, 1):
        page.wait_for_selector(
            f".compare-side[data-side='{side}'][data-state=ready]", timeout=30_000
        )
    heads = page.locator(".compare-side .viewer-head")
    assert "2026-01-05" in heads.nth(0).inner_text() and "2024-10-15" in heads.nth(1).inner_text()
    assert "36 37" in heads.nth(0).inner_text()
    assert (
        page.locator(".compare-side[data-side='0'] .when").get_attribute("data-when") == "current"
    )
    assert page.locator(".compare-side[data-side='1'] .when").get_attribute("data-when") == "prior"

    left = page.locator("#side-0-element").bounding_box()
    cx, cy = left["x"] + left["width"] / 2, left["y"] + left["height"] / 2

    def drag(dx: float, dy: float, button: str = "left") -> None:
        page.mouse.move(cx, cy)
        page.mouse.down(button=button)
        page.mouse.move(cx + dx, cy + dy, steps=8)
        page.mouse.up(button=button)

    # Window/level dragged on the left: the right follows (same Bits Stored: the same window).
    before = page.evaluate(VOI, 1)
    drag(-120, -90)
    page.wait_for_function(f"(before) => ({VOI})(1).lower !== before.lower", arg=before)
    assert page.evaluate(VOI, 0) == pytest.approx(page.evaluate(VOI, 1))
    # Zoom with the right button on the left: the right zooms as much.
    drag(0, 25, button="right")
    zoomed = page.evaluate(ZOOM, 0)
    assert zoomed > 1.1
    assert page.evaluate(ZOOM, 1) == pytest.approx(zoomed, rel=0.02)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "compare-synchronised.png"))

    # Unsynchronised: the left changes alone.
    page.uncheck("#compare-sync")
    right_voi, right_zoom = page.evaluate(VOI, 1), page.evaluate(ZOOM, 1)
    drag(-100, 40)
    assert page.evaluate(VOI, 0) != pytest.approx(right_voi)
    assert page.evaluate(VOI, 1) == pytest.approx(right_voi)
    assert page.evaluate(ZOOM, 1) == pytest.approx(right_zoom)
    assert_clean(page, problems)


def test_compare_syncs_the_window_as_a_fraction_when_bit_depths_differ(
    web_server, browser_page, practice
):
    """A 12-bit current and an 8-bit prior: the same window would whiten one of them; the
    prior gets the same window as a fraction of its 0..255 scale."""
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 850})
    patient = Patient.objects.create(
        practice=practice, chart_number="CMP-8", family_name="Profondeur", given_name="Noël"
    )
    current = ingest_dataset(
        practice, periapical(patient, study_date="20260105", seed=0, teeth=["46"])
    )
    prior = ingest_dataset(
        practice, periapical(patient, study_date="20200105", seed=1, teeth=["46"], bits=8)
    )
    login(page, web_server, f"/viewer/compare/?image={current.pk}&image={prior.pk}")
    for side in (0, 1):
        page.wait_for_selector(
            f".compare-side[data-side='{side}'][data-state=ready]", timeout=30_000
        )
    box = page.locator("#side-0-element").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 150, cy - 80, steps=8)
    page.mouse.up()
    left, right = page.evaluate(VOI, 0), page.evaluate(VOI, 1)
    assert left["upper"] - left["lower"] < 4000  # the drag narrowed the 12-bit window
    assert right["lower"] == pytest.approx(left["lower"] * 255 / 4095, abs=0.01)
    assert right["upper"] == pytest.approx(left["upper"] * 255 / 4095, abs=0.01)
    assert_clean(page, problems)
