"""The FMX mount in Chromium: reached from the patient search through the chart, its 18
images in their slots with their tooth numbers; an image dragged onto another slot swaps
with it (recorded with the user); an image opened from the mount in the viewer.
Screenshots: var/screenshots/mount-*.png."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from dicomnet.models import DicomInstance, Mount, MountChange
from nexrel.demo import MOUTHS
from nexrel.radiographs import Mouth
from patients.models import Patient
from tests import dental_samples
from tests.browser import assert_clean
from tests.dicom_samples import ingest_dataset
from tests.e2e.test_viewer import SCREENSHOTS, login, wait_ready

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]


def radiograph_pixels(label: str, *, portrait: bool) -> np.ndarray:
    """A sensor-like image (dark background, a lighter crown-like blob) with its teeth written
    on it, so a screenshot shows which image is where."""
    width, height = (240, 320) if portrait else (320, 240)
    image = Image.new("I;16", (width, height), 600)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.15, height * 0.15, width * 0.85, height * 0.85), fill=2600)
    font = ImageFont.load_default(size=42)
    draw.text((width / 2, height / 2), label, fill=3900, font=font, anchor="mm")
    return np.array(image, dtype=np.uint16)


def fmx_visit(practice, patient: Patient | None = None, *, radiographs: bool = False) -> Mount:
    """An FMX appointment (code 02101) of ``patient`` (a new one by default) now, and its 18
    images sent with the worklist item's StudyInstanceUID, each naming its teeth. Their
    pixels: the teeth written on a blob, or (``radiographs``) the demo's drawing of them."""
    if patient is None:
        patient = Patient.objects.create(
            practice=practice, chart_number="FMX-2", family_name="Incisive", given_name="Inès"
        )
    appointment = dental_samples.fmx_appointment(practice, patient)
    start = timezone.localtime(appointment.start)
    uid = appointment.worklist_item.study_instance_uid
    series = dental_samples.fmx_series(
        study_uid=uid,
        patient_id=patient.chart_number,
        patient_name=f"{patient.family_name}^{patient.given_name}",
        study_date=start.strftime("%Y%m%d"),
    )
    mouth = MOUTHS.get(patient.chart_number, Mouth())
    for n, ds in enumerate(series, start=1):
        if radiographs:
            dental_samples.radiograph(ds, mouth, seed=n)
            ds.AcquisitionDateTime = (start + dt.timedelta(minutes=n)).strftime("%Y%m%d%H%M%S")
        else:
            teeth = dental_samples.teeth_of(ds)
            bitewing = len({t[0] in "12" for t in teeth}) == 2
            pixels = radiograph_pixels(" ".join(teeth[:3]), portrait=not bitewing)
            ds.Rows, ds.Columns = pixels.shape
            ds.PixelData = pixels.tobytes()
            ds.WindowCenter, ds.WindowWidth = 2048, 4096
        ingest_dataset(practice, ds)
    return Mount.objects.get(appointment=appointment)


def slot_instance(page, position: int) -> str | None:
    return page.get_attribute(f".mount-slot[data-position='{position}'] img", "data-instance")


def test_from_the_patient_search_through_the_chart_to_the_fmx_mount(
    web_server, browser_page, practice
):
    """A clinician's path, by clicks: search "cote", open Zoé Côté's chart, open her FMX
    mount, and see every image in the slot of its teeth."""
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    zoe = Patient.objects.get(practice=practice, chart_number="1001")
    mount = fmx_visit(practice, zoe, radiographs=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # 1. The patient search, unaccented, as typed: only her row is left.
    login(page, web_server, "/patients/")
    page.locator("input[name=q]").press_sequentially("cote", delay=40)
    results = page.locator("#patient-results tr:has(td)")
    page.wait_for_function(
        "() => document.querySelectorAll('#patient-results tr:has(td)').length === 1"
    )
    assert results.inner_text().split("\t")[:2] == ["1001", "Côté, Zoé"]
    results.locator("a", has_text="Côté, Zoé").click()

    # 2. Her chart: today's FMX, its mount.
    page.wait_for_url(f"{web_server}/patients/{zoe.pk}/")
    assert page.inner_text("#patient-name") == "Zoé Côté"
    study = page.locator(f"section.study[data-study='{mount.study_id}']")
    assert "FMX" in study.locator(".meta").first.inner_text()
    assert study.locator("img.thumb").count() == 18
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth)"
    )
    page.screenshot(path=str(SCREENSHOTS / "mount-fmx-chart.png"), full_page=True)
    study.locator("a.open-mount", has_text="FMX 18").click()

    # 3. The mount: 18 slots, none empty, each image a loaded thumbnail in the slot of the
    # teeth it names, the slot's tooth numbers over it.
    page.wait_for_url(f"{web_server}/dicom/mounts/{mount.pk}/")
    assert page.inner_text("#mount-title").startswith("FMX 18 · Zoé Côté")
    assert "18/18 images" in page.inner_text("p.meta")
    slots = page.locator(".mount-slot")
    assert slots.count() == 18 and page.locator(".mount-slot.empty").count() == 0
    page.wait_for_function(
        "[...document.querySelectorAll('.mount-slot img')].every(i => i.complete && i.naturalWidth)"
    )
    expected = dental_samples.fmx_teeth()
    for position, teeth in enumerate(expected, start=1):
        slot = page.locator(f".mount-slot[data-position='{position}']")
        assert slot.locator(".tooth").all_inner_texts() == teeth, position
        shown = DicomInstance.objects.get(pk=slot_instance(page, position))
        assert shown.study_id == mount.study_id and shown.dental["teeth"] == teeth, position
    # Bitewings lie across their slot, periapicals stand: as a dentist expects to read them.
    sizes = page.evaluate(
        "[...document.querySelectorAll('.mount-slot img')].map(i => "
        "[+i.closest('.mount-slot').dataset.position, i.naturalWidth > i.naturalHeight])"
    )
    assert {position for position, landscape in sizes if landscape} == {8, 9, 10, 11}
    page.screenshot(path=str(SCREENSHOTS / "mount-fmx-from-chart.png"), full_page=True)
    assert_clean(page, problems)


def test_fmx_mount_drag_and_open_in_viewer(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    mount = fmx_visit(practice)
    login(page, web_server, f"/dicom/mounts/{mount.pk}/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    assert page.locator(".mount-slot").count() == 18
    assert page.locator(".mount-slot.empty").count() == 0
    assert page.locator(".mount-slot[data-position='1'] .tooth").all_inner_texts() == [
        "18",
        "17",
        "16",
    ]
    page.wait_for_function(
        "[...document.querySelectorAll('.mount-slot img')].every(i => i.complete && i.naturalWidth)"
    )
    page.screenshot(path=str(SCREENSHOTS / "mount-fmx.png"), full_page=True)

    first, second = slot_instance(page, 1), slot_instance(page, 2)
    page.drag_and_drop(".mount-slot[data-position='1'] img", ".mount-slot[data-position='2']")
    page.wait_for_selector("#mount-root[data-state=saved]")
    assert (slot_instance(page, 1), slot_instance(page, 2)) == (second, first)
    change = MountChange.objects.get(mount=mount, action="swap")
    assert (change.user.username, change.from_position, change.to_position) == ("clinician", 1, 2)
    page.wait_for_function(
        "[...document.querySelectorAll('.mount-slot img')].every(i => i.complete && i.naturalWidth)"
    )
    page.screenshot(path=str(SCREENSHOTS / "mount-fmx-after-drag.png"), full_page=True)

    opened = slot_instance(page, 12)
    page.click(".mount-slot[data-position='12'] a.slot-image")
    page.wait_for_url(f"**/viewer/studies/{mount.study.study_instance_uid}/**")
    assert f"mount={mount.pk}" in page.url
    wait_ready(page)
    sop = mount.study.instances.get(pk=opened).sop_instance_uid
    assert (
        page.evaluate(
            "JSON.parse(document.getElementById('viewer-config').textContent).open.instance"
        )
        == sop
    )
    # Opened from the mount, the study's images follow its slots: slot 12 is image 12.
    page.wait_for_function("document.getElementById('slice-info').textContent.includes('12 / 18')")
    page.screenshot(path=str(SCREENSHOTS / "mount-fmx-viewer.png"))

    # The chart: every tooth of the FMX dated; a click lists the tooth's images.
    page.goto(f"{web_server}/patients/{mount.study.linked_patient_id}/")
    assert page.locator(".tooth-cell.has-images").count() == 32
    page.click(".tooth-cell[data-tooth='36']")
    page.wait_for_selector("#tooth-images[data-tooth='36']")
    assert page.locator("#tooth-images img").count() == 2  # its periapical and its bitewing
    page.screenshot(path=str(SCREENSHOTS / "mount-tooth-chart.png"), full_page=True)
    assert_clean(page, problems)
