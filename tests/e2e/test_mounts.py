"""The FMX mount in Chromium: 18 images in their slots with their tooth numbers; an image
dragged onto another slot swaps with it (recorded with the user); an image opened from the
mount in the viewer. Screenshots: var/screenshots/mount-*.png."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from dicomnet.models import Mount, MountChange
from patients.models import Appointment, Patient
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


def fmx_visit(practice) -> Mount:
    patient = Patient.objects.create(
        practice=practice, chart_number="FMX-2", family_name="Incisive", given_name="Inès"
    )
    start = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    appointment = Appointment.objects.create(
        practice=practice,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=45),
        procedure_code="02101",
        procedure_description="FMX",
        needs_imaging=True,
    )
    uid = appointment.worklist_item.study_instance_uid
    for ds in dental_samples.fmx_series(study_uid=uid, patient_id="FMX-2"):
        teeth = [item.CodeMeaning.split()[-1] for item in ds.PrimaryAnatomicStructureSequence]
        bitewing = len({t[0] in "12" for t in teeth}) == 2
        pixels = radiograph_pixels(" ".join(teeth[:3]), portrait=not bitewing)
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelData = pixels.tobytes()
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
        ingest_dataset(practice, ds)
    return Mount.objects.get(appointment=appointment)


def slot_instance(page, position: int) -> str | None:
    return page.get_attribute(f".mount-slot[data-position='{position}'] img", "data-instance")


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
