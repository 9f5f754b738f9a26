"""The viewer's tools in Chromium, each checked by what it does to the view: presets change
the window readout, rotate and flip move the pixels, invert inverts them, reset brings back
the first view; previous/next and the thumbnails move through the study, ``?`` opens the
help; an angle and a manual calibration measure; the header names the patient, in English
and in French (docs/viewer.md)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from pydicom.uid import generate_uid

from dicomnet.models import DicomInstance, DicomStudy, ImageAnnotation
from patients.models import Patient
from tests.browser import assert_clean
from tests.dicom_samples import ingest_dataset, intraoral
from tests.e2e.test_viewer import login, shoot, viewer_url, wait_for, wait_ready
from tests.e2e.test_viewer_display import (
    COLUMNS,
    CT_IMAGE,
    PREPARE,
    ROWS,
    pattern,
    viewer_image,
)
from tests.e2e.test_viewer_display import Case as DisplayCase

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]

# Sums of the canvas's halves: flipping swaps them.
CANVAS_HALVES = """() => {
  const c = window.nexrelViewer.viewport.canvas;
  const copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const ctx = copy.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(c, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  const h = {left: 0, right: 0, top: 0, bottom: 0, lit: 0};
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const v = d[(y * c.width + x) * 4];
    h[x < c.width / 2 ? 'left' : 'right'] += v;
    h[y < c.height / 2 ? 'top' : 'bottom'] += v;
    if (v > 8) h.lit++;
  }
  return h;
}"""

VIEW_STATE = """() => {
  const vp = window.nexrelViewer.viewport;
  const cam = vp.getCamera(), props = vp.getProperties();
  return {rotation: vp.getViewPresentation().rotation || 0, flipH: !!cam.flipHorizontal,
          flipV: !!cam.flipVertical, invert: !!props.invert, voi: props.voiRange};
}"""

# The canvas position (CSS pixels, in the element) of image pixel (column, row).
TO_CANVAS = """([col, row]) => {
  const vp = window.nexrelViewer.viewport;
  return vp.worldToCanvas(vp.getImageData().imageData.indexToWorld([col, row, 0]));
}"""


def radiograph(study_uid: str, series_uid: str, number: int, **elements):
    ds = intraoral(study_uid=study_uid, series_uid=series_uid, instance_number=number, **elements)
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.PixelData = pattern(0, 4095).round().astype(np.uint16).tobytes()
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    return ds


def tools_study(practice) -> list[DicomInstance]:
    """A study of two series: two radiographs (the first with Pixel Spacing 0.1 mm, the
    second uncalibrated), then one CT slice (absolute presets)."""
    study, radiographs, ct = generate_uid(), generate_uid(), generate_uid()
    first = ingest_dataset(practice, radiograph(study, radiographs, 1, PixelSpacing=[0.1, 0.1]))
    second = ingest_dataset(practice, radiograph(study, radiographs, 2))
    slice_ = intraoral(study_uid=study, series_uid=ct, SeriesNumber=2, Modality="CT",
                       SOPClassUID=CT_IMAGE, RescaleIntercept=-1024, RescaleSlope=1,
                       WindowCenter=400, WindowWidth=2000)  # fmt: skip
    return [first, second, ingest_dataset(practice, slice_)]


def drag(page, points: list[tuple[int, int]]) -> None:
    """Left-drags through image pixels ``points`` (column, row)."""
    box = page.locator("#stack-element").bounding_box()
    assert box
    canvas = [page.evaluate(TO_CANVAS, list(p)) for p in points]
    page.mouse.move(box["x"] + canvas[0][0], box["y"] + canvas[0][1])
    page.mouse.down()
    for x, y in canvas[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()


def click_image(page, point: tuple[int, int]) -> None:
    box = page.locator("#stack-element").bounding_box()
    assert box
    x, y = page.evaluate(TO_CANVAS, list(point))
    page.mouse.click(box["x"] + x, box["y"] + y)


def showing(page, text: str) -> None:
    """Waits for the slice readout to say ``text`` ("Image 1 / 2")."""
    page.wait_for_function(
        "(t) => document.querySelector('#slice-info').textContent === t", arg=text
    )


def reads(page, window: str) -> None:
    """Waits for the window readout (updated when the viewport has drawn) to say ``window``."""
    page.wait_for_function(
        "(t) => document.querySelector('#voi-info').textContent === t", arg=window
    )


def current_series(page) -> str | None:
    return page.get_attribute(".series-thumb.current", "data-series")


def last_stats(page) -> dict:
    return page.evaluate(
        "() => Object.values(window.nexrelViewer.lastAnnotation().data.cachedStats)[0] || {}"
    )


def test_presets_rotate_flip_invert_reset_and_moving_through_the_study(
    web_server, browser_page, practice
):
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    first, second, ct = tools_study(practice)
    login(page, web_server, viewer_url(first))
    wait_ready(page)
    page.wait_for_timeout(300)
    initial = page.evaluate(VIEW_STATE)
    reads(page, "W 4096 · L 2048")  # the file's own window
    plain = page.evaluate(CANVAS_HALVES)
    assert plain["left"] < plain["right"] and plain["top"] > plain["bottom"]  # the pattern

    # Presets: Bone by the menu, soft tissue by its key; a radiograph's follow its range.
    page.select_option("#preset", "bone")
    reads(page, "W 2048 · L 2662")  # 0.5 and 0.65 of 0..4095
    page.keyboard.press("3")
    assert page.input_value("#preset") == "soft"
    reads(page, "W 2048 · L 1229")
    page.keyboard.press("1")
    reads(page, "W 4096 · L 2048")

    # Rotate 90°: the wide image stands up, fewer pixels lit.
    page.click("button[data-action=rotate]")
    assert page.evaluate(VIEW_STATE)["rotation"] == 90
    wait_for(lambda: page.evaluate(CANVAS_HALVES)["lit"] < plain["lit"] * 0.8)
    page.keyboard.press("r")
    page.keyboard.press("r")
    page.keyboard.press("r")
    assert page.evaluate(VIEW_STATE)["rotation"] == 0

    # Flips swap the halves.
    page.keyboard.press("h")
    assert page.evaluate(VIEW_STATE)["flipH"]
    wait_for(lambda: (h := page.evaluate(CANVAS_HALVES))["left"] > h["right"])
    page.click("button[data-action=flipV]")
    assert page.evaluate(VIEW_STATE)["flipV"]
    wait_for(lambda: (h := page.evaluate(CANVAS_HALVES))["top"] < h["bottom"])
    shoot(page, "tools-flipped")

    # Invert: every pixel becomes 255 minus itself.
    case = DisplayCase("radiograph", None, None)  # type: ignore[arg-type]
    page.evaluate(PREPARE, None)
    normal = viewer_image(page, case)
    page.keyboard.press("i")
    inverted = viewer_image(page, case)
    assert np.abs(inverted - (255 - normal)).max() <= 1

    # Reset: back to the first view, pixels included.
    page.select_option("#preset", "perio")
    page.keyboard.press("r")
    page.keyboard.press("Escape")
    page.wait_for_timeout(200)
    assert page.evaluate(VIEW_STATE) == initial
    assert page.input_value("#preset") == "default"
    assert np.abs(viewer_image(page, case) - normal).max() <= 1

    # Next and previous image of the study: within the series, then into the next series.
    page.keyboard.press("PageDown")
    showing(page, "Image 2 / 2")
    page.click("button[data-action=next]")
    showing(page, "Image 1 / 1")
    assert current_series(page) == ct.series.series_instance_uid
    reads(page, "W 2000 · L 400")
    page.keyboard.press("2")  # bone, in Hounsfield units for a CT
    reads(page, "W 2500 · L 500")
    page.keyboard.press("PageUp")
    showing(page, "Image 2 / 2")
    page.click("button[data-action=prev]")
    showing(page, "Image 1 / 2")

    # The thumbnail strip switches series.
    page.click(f".series-thumb[data-series='{ct.series.series_instance_uid}']")
    showing(page, "Image 1 / 1")
    page.click(f".series-thumb[data-series='{first.series.series_instance_uid}']")
    showing(page, "Image 1 / 2")
    assert current_series(page) == first.series.series_instance_uid

    # The help overlay: its key opens it, Esc closes it.
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert "PageUp" in page.inner_text("#help")
    shoot(page, "help")
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    assert_clean(page, problems)


def test_angle_and_manual_calibration(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    calibrated, uncalibrated, _ = tools_study(practice)
    login(page, web_server, viewer_url(calibrated))
    wait_ready(page)

    # A right angle: two points of one arm by a drag, the third by a click.
    page.keyboard.press("a")
    drag(page, [(60, 20), (60, 100)])
    click_image(page, (200, 100))
    page.wait_for_timeout(600)
    assert last_stats(page)["angle"] == pytest.approx(90, abs=1)
    wait_for(lambda: ImageAnnotation.objects.filter(instance=calibrated, kind="angle").exists())
    shoot(page, "angle")

    # Manual calibration of the uncalibrated image: a line of 200 px is 25 mm.
    page.goto(f"{web_server}{viewer_url(uncalibrated)}")
    wait_ready(page)
    assert page.inner_text("#calibration-info") == "uncalibrated"
    page.keyboard.press("l")
    drag(page, [(30, 64), (230, 64)])
    page.wait_for_timeout(600)
    assert last_stats(page)["unit"] == "px"
    page.keyboard.press("k")
    page.fill("#ask-input", "25")
    page.click("#ask-ok")
    page.wait_for_function(
        "() => document.querySelector('#calibration-info').textContent.startsWith('manual')"
    )
    assert page.inner_text("#calibration-info") == "manual (0.1250 mm/px)"
    drag(page, [(30, 110), (130, 110)])  # 100 px
    page.wait_for_timeout(600)
    stats = last_stats(page)
    assert stats["unit"].startswith("mm")
    assert stats["length"] == pytest.approx(12.5, abs=0.1)
    saved = wait_for(
        lambda: ImageAnnotation.objects.filter(instance=uncalibrated, kind="calibration").first()
    )
    assert saved.data["mm_per_px"] == pytest.approx(0.125, rel=2e-3)
    shoot(page, "calibrated")

    # Opened again, the image keeps its calibration.
    page.reload()
    wait_ready(page)
    page.wait_for_function(
        "() => document.querySelector('#calibration-info').textContent.startsWith('manual')"
    )
    assert_clean(page, problems)


def test_the_header_names_the_patient_in_english_and_french(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1200, "height": 700})
    linked = ingest_dataset(practice, intraoral(StudyDescription="Bitewings"))
    patient = Patient.objects.get(practice=practice, chart_number="1004")
    DicomStudy.objects.filter(pk=linked.study.pk).update(patient=patient)
    unlinked = ingest_dataset(practice, intraoral(patient_name="Tremblay^Marie"))

    login(page, web_server, viewer_url(linked))
    wait_ready(page)
    head = page.inner_text(".viewer-head")
    assert head.split() == "François Saint-Pierre Chart 1004 Jan. 2, 2024 · IO · Bitewings".split()
    assert page.get_attribute(".viewer-head h1 a", "href") == f"/patients/{patient.pk}/"
    shoot(page, "header-linked")
    page.goto(f"{web_server}{viewer_url(unlinked)}")
    wait_ready(page)
    head = page.inner_text(".viewer-head")
    assert head.split() == "Marie Tremblay not linked to a patient Jan. 2, 2024 · IO".split()
    assert not head.rstrip().endswith("·")
    shoot(page, "header-unlinked")
    assert_clean(page, problems)

    # French, the practice's default language, for a browser asking for fr-CA.
    french = page.context.browser.new_context(locale="fr-CA")
    fr = french.new_page()
    errors: list[str] = []
    fr.on("pageerror", lambda exc: errors.append(str(exc)))
    login(fr, web_server, viewer_url(linked))
    fr.set_viewport_size({"width": 1200, "height": 700})
    wait_ready(fr)
    assert fr.inner_text(".viewer-head").split() == (
        "François Saint-Pierre Dossier 1004 2 janvier 2024 · IO · Bitewings".split()
    )
    assert fr.inner_text("button[data-action=rotate]") == "Pivoter"
    assert fr.inner_text("#cine") == "Lecture"
    assert fr.inner_text("#preset option[value=bone]") == "Os"
    fr.keyboard.press("?")
    assert "Raccourcis clavier" in fr.inner_text("#help")
    fr.keyboard.press("Escape")
    shoot(fr, "french")
    assert errors == []
    french.close()
