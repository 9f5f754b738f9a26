"""The diagnostic viewer in Chromium against the real web server, over real ingested DICOM:
pixels change under the mouse, lengths in mm, a 300-slice CBCT scrolled, MPR, annotations
saved on the server, and every transfer syntax pydicom's test files cover decoded in the
browser with no console error and no CSP violation. Screenshots go to var/screenshots/."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomnet.models import DicomInstance, ImageAnnotation
from tests.browser import assert_clean
from tests.dicom_samples import ingest_bytes, ingest_dataset, intraoral, to_bytes

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"

# The canvas Cornerstone draws the stack viewport into, summed: changes when the pixels do.
CANVAS_SUM = """(selector) => {
  const c = document.querySelector(selector + ' canvas');
  if (!c || !c.width) return null;
  // A copy read once: reading Cornerstone's canvas itself twice warns in the console.
  const copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const ctx = copy.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(c, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, lit = 0;
  for (let i = 0; i < d.length; i += 4) { sum += d[i] + d[i+1] + d[i+2]; if (d[i] > 8) lit++; }
  return {sum, lit, pixels: d.length / 4};
}"""


def panoramic(*, rows: int = 750, columns: int = 1450, spacing: float = 0.1):
    """A 16-bit MONOCHROME2 panoramic (DX) with Pixel Spacing: an arch of bright teeth on a
    gradient, so window/level visibly changes it."""
    ds = intraoral(seed=3)
    y, x = np.mgrid[0:rows, 0:columns]
    arch = np.exp(-(((y - rows * 0.45) - 0.00035 * (x - columns / 2) ** 2) ** 2) / (2 * 40**2))
    teeth = (np.sin(x / 18.0) > 0.2) * arch
    pixels = 600 + 1800 * y / rows + 1500 * teeth
    pixels = np.random.default_rng(1).normal(pixels, 40).clip(0, 4095).astype(np.uint16)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = DX_FOR_PRESENTATION
    ds.Modality = "PX"
    ds.Rows, ds.Columns = rows, columns
    ds.PixelSpacing = [spacing, spacing]
    ds.PixelData = pixels.tobytes()
    ds.WindowCenter, ds.WindowWidth = 2000, 4000
    return ds


def cbct_slices(count: int = 300, size: int = 64):
    """A CT series of ``count`` axial slices 0.5 mm apart (ImagePositionPatient,
    ImageOrientationPatient), a sphere of "bone" in water, in HU."""
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    zz, yy, xx = np.mgrid[0:1, 0:size, 0:size]
    for k in range(count):
        ds = intraoral(study_uid=study, series_uid=series, instance_number=k + 1, size=size)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE
        ds.Modality = "CT"
        ds.FrameOfReferenceUID = frame_of_reference
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-size / 4, -size / 4, k * 0.5]
        ds.SliceThickness = 0.5
        ds.PixelSpacing = [0.5, 0.5]
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        radius = 0.39 * size * np.sqrt(max(0.0, 1 - ((k - count / 2) / (count / 2)) ** 2))
        inside = (yy[0] - size / 2) ** 2 + (xx[0] - size * 0.58) ** 2 < radius**2
        slab = np.where(inside, 1024 + 1200 + (k % 50) * 4, 1024).astype(np.uint16)
        ds.PixelData = slab.tobytes()
        ds.WindowCenter, ds.WindowWidth = 400, 2000
        yield ds


def wait_for(check, timeout: float = 10.0):
    """Polls ``check`` until it returns something true (the browser saves asynchronously)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return found


def login(page, web_server: str, path: str) -> None:
    page.goto(f"{web_server}{path}")
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", "nexrel-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{web_server}{path}")


def viewer_url(instance: DicomInstance) -> str:
    return (
        f"/viewer/studies/{instance.study.study_instance_uid}/?instance={instance.sop_instance_uid}"
    )


def wait_ready(page, timeout: int = 30_000) -> None:
    page.wait_for_selector("#viewer[data-state=ready]", timeout=timeout)


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"viewer-{name}.png"))


def center_of(page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def test_panoramic_window_level_and_length_in_mm(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    instance = ingest_dataset(practice, panoramic())
    login(page, web_server, viewer_url(instance))
    # The server's preview is there at once, before any script ran.
    assert page.locator("#preview").count() == 1
    wait_ready(page)
    assert page.inner_text("#slice-info") == "Image 1 / 1"
    assert "Pixel Spacing (0.100 mm)" in page.inner_text("#calibration-info")
    before = page.evaluate(CANVAS_SUM, "#stack-element")
    assert before and before["lit"] > before["pixels"] * 0.3
    shoot(page, "panoramic")

    # Window/level by left-drag changes the pixels.
    x, y = center_of(page, "#stack-element")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 60, steps=8)
    page.mouse.up()
    page.wait_for_timeout(300)
    after = page.evaluate(CANVAS_SUM, "#stack-element")
    assert abs(after["sum"] - before["sum"]) > before["sum"] * 0.02
    assert "W " in page.inner_text("#voi-info")

    # A length between two image points, known in pixels: Pixel Spacing times pixels.
    page.keyboard.press("l")
    points = page.evaluate(
        """() => {
          const vp = window.nexrelViewer.viewport;
          const id = vp.getCurrentImageId();
          const toCanvas = (col, row) => vp.worldToCanvas(
              window.nexrelViewer.viewport.getImageData().imageData.indexToWorld([col, row, 0]));
          return [toCanvas(300, 375), toCanvas(1100, 375)];
        }"""
    )
    box = page.locator("#stack-element").bounding_box()
    (x1, y1), (x2, y2) = points
    page.mouse.move(box["x"] + x1, box["y"] + y1)
    page.mouse.down()
    page.mouse.move(box["x"] + x2, box["y"] + y2, steps=10)
    page.mouse.up()
    page.wait_for_timeout(600)  # the tool computes its statistics throttled
    length = page.evaluate(
        """() => {
          const a = window.nexrelViewer.lastAnnotation();
          return Object.values(a.data.cachedStats)[0];
        }"""
    )
    assert length["unit"].startswith("mm")
    assert length["length"] == pytest.approx(800 * 0.1, abs=0.3)
    shoot(page, "panoramic-length")
    saved = wait_for(lambda: ImageAnnotation.objects.filter(instance=instance).first())
    assert saved.kind == "length"
    wait_for(lambda: abs(ImageAnnotation.objects.get(pk=saved.pk).data["length"] - 80) < 0.3)
    assert_clean(page, problems)

    # The decode worker and the codecs are served as production serves them: with the
    # pages' CSP (a worker obeys its own script's), the WebAssembly as application/wasm.
    worker = page.request.get(f"{web_server}/static/viewer/dist/decodeImageFrameWorker.js")
    assert "'wasm-unsafe-eval'" in worker.headers["content-security-policy"]
    assert "'unsafe-eval'" not in worker.headers["content-security-policy"].replace(
        "'wasm-unsafe-eval'", ""
    )
    wasm = page.request.get(f"{web_server}/static/viewer/dist/openjpegwasm_decode.wasm")
    assert wasm.headers["content-type"] == "application/wasm"


def slice_shown(page) -> int:
    return int(page.inner_text("#slice-info").split()[1])


def settled_slice(page, *, quiet_ms: int = 400, within_s: float = 10) -> int:
    """The slice shown once it has stopped changing for quiet_ms."""
    shown, deadline = slice_shown(page), time.monotonic() + within_s
    while time.monotonic() < deadline:
        page.wait_for_timeout(quiet_ms)
        if slice_shown(page) == shown:
            return shown
        shown = slice_shown(page)
    raise AssertionError(f"the slice shown kept changing for {within_s} s (last {shown})")


def test_cbct_scrolls_300_slices_and_opens_mpr(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1400, "height": 800})
    instances = [ingest_dataset(practice, ds) for ds in cbct_slices()]
    middle = instances[150]
    login(page, web_server, viewer_url(middle))
    wait_ready(page)
    assert page.inner_text("#slice-info") == "Image 151 / 300"
    before = page.evaluate(CANVAS_SUM, "#stack-element")

    # The wheel scrolls, and so do the arrow keys.
    page.mouse.move(*center_of(page, "#stack-element"))
    for _ in range(5):
        page.mouse.wheel(0, 100)
    page.wait_for_function(
        "() => document.querySelector('#slice-info').textContent !== 'Image 151 / 300'"
    )
    # Wheel events land one by one (later on a loaded machine): count from where they settle.
    wheeled = settled_slice(page)
    assert wheeled > 151
    for _ in range(40):
        page.keyboard.press("ArrowDown")
    page.wait_for_function(
        f"() => document.querySelector('#slice-info').textContent === 'Image {wheeled + 40} / 300'"
    )
    page.wait_for_timeout(500)
    after = page.evaluate(CANVAS_SUM, "#stack-element")
    assert after["sum"] != before["sum"]
    shoot(page, "cbct-stack")

    # Cine: Play advances the slices on its own (looping), Pause stops them.
    def slice_number() -> int:
        return slice_shown(page)

    page.click("#cine")
    assert page.inner_text("#cine") == "Pause"
    started = slice_number()
    page.wait_for_function(
        f"() => document.querySelector('#slice-info').textContent !== 'Image {started} / 300'"
    )
    page.wait_for_timeout(500)
    page.keyboard.press(" ")  # Space pauses
    assert page.inner_text("#cine") == "Play"
    # A slice requested just before the pause may still arrive (later on a loaded machine):
    # the number must settle, then stay.
    paused = settled_slice(page)
    assert paused != started
    page.wait_for_timeout(700)
    assert slice_number() == paused

    # MPR: three orthographic viewports of the volume, none empty.
    page.click("#mpr-toggle")
    for viewport in ("#mpr-axial", "#mpr-coronal", "#mpr-sagittal"):
        page.wait_for_function(
            f"""() => {{
              const c = document.querySelector('{viewport} canvas');
              if (!c || !c.width) return false;
              const copy = document.createElement('canvas');
              copy.width = c.width; copy.height = c.height;
              const ctx = copy.getContext('2d', {{willReadFrequently: true}});
              ctx.drawImage(c, 0, 0);
              const d = ctx.getImageData(0, 0, c.width, c.height).data;
              let lit = 0;
              for (let i = 0; i < d.length; i += 4) if (d[i] > 40) lit++;
              return lit > d.length / 4 * 0.02;
            }}""",
            timeout=60_000,
        )
    # Never mirrored: the sphere lies towards the patient's left (+x: its columns run along
    # ImageOrientationPatient's first vector), which the axial and coronal views show on the
    # viewer's right, as radiographs are read.
    for viewport in ("#mpr-axial", "#mpr-coronal"):
        side = page.evaluate(
            f"""() => {{
              const c = document.querySelector('{viewport} canvas');
              const copy = document.createElement('canvas');
              copy.width = c.width; copy.height = c.height;
              const ctx = copy.getContext('2d', {{willReadFrequently: true}});
              ctx.drawImage(c, 0, 0);
              const d = ctx.getImageData(0, 0, c.width, c.height).data;
              let sum = 0, n = 0;
              for (let i = 0; i < d.length; i += 4) {{
                if (d[i] > 200) {{ sum += (i / 4) % c.width; n++; }}
              }}
              return {{centroid: sum / n, width: c.width}};
            }}"""
        )
        assert side["centroid"] > side["width"] / 2, (viewport, side)
    page.fill("#slab", "10")
    page.dispatch_event("#slab", "input")
    page.wait_for_timeout(500)
    shoot(page, "cbct-mpr")
    assert_clean(page, problems)


def test_a_note_is_saved_and_drawn_again_after_a_reload(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1200, "height": 800})
    instance = ingest_dataset(practice, intraoral(size=256, PixelSpacing=[0.05, 0.05]))
    login(page, web_server, viewer_url(instance))
    wait_ready(page)
    page.click("button[data-tool=ArrowAnnotate]")
    x, y = center_of(page, "#stack-element")
    page.mouse.move(x - 80, y - 60)
    page.mouse.down()
    page.mouse.move(x, y, steps=6)
    page.mouse.up()
    page.fill("#ask-input", "Carie distale 36")
    page.click("#ask-ok")
    saved = wait_for(lambda: ImageAnnotation.objects.filter(instance=instance).first())
    assert (saved.kind, saved.label) == ("arrow", "Carie distale 36")

    page.reload()
    wait_ready(page)
    page.wait_for_function(
        "() => (window.nexrelViewer.lastAnnotation()?.data.label || '') === 'Carie distale 36'"
    )
    page.wait_for_timeout(300)
    shoot(page, "note-reloaded")
    # Drawing it again sent nothing back: still one row.
    assert ImageAnnotation.objects.filter(instance=instance).count() == 1
    assert_clean(page, problems)


TRANSFER_SYNTAX_SAMPLES = [
    "CT_small.dcm",  # explicit VR little endian
    "MR_small_implicit.dcm",  # implicit VR little endian
    "MR_small_bigendian.dcm",  # explicit VR big endian
    "image_dfl.dcm",  # deflated explicit VR little endian
    "MR_small_RLE.dcm",  # RLE lossless
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL colour
    "JPEG-lossy.dcm",  # JPEG extended, 12-bit
    "JPEG-LL.dcm",  # JPEG lossless SV1, 16-bit
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "JPEGLSNearLossless_16.dcm",  # JPEG-LS near-lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "JPEG2000.dcm",  # JPEG 2000
]  # pydicom's own test files hold no HTJ2K sample (it would be a download)


def fresh_uids(name: str) -> bytes:
    """pydicom's test file ``name`` in its own transfer syntax, with fresh UIDs: several of
    them share a SOP Instance UID, and some have no Study Instance UID."""
    ds = dcmread(get_testdata_file(name))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    syntax = ds.file_meta.TransferSyntaxUID
    data = to_bytes(ds)
    assert dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == syntax
    return data


def test_every_transfer_syntax_is_decoded_in_the_browser(web_server, browser_page, practice):
    page, problems = browser_page
    page.set_viewport_size({"width": 1000, "height": 700})
    instances = {name: ingest_bytes(practice, fresh_uids(name)) for name in TRANSFER_SYNTAX_SAMPLES}
    # A page error's stack, for the message when an image is not drawn.
    page.add_init_script(
        "window.__errs = []; window.addEventListener('error', (e) => "
        "window.__errs.push(e.error && e.error.stack))"
    )
    login(page, web_server, viewer_url(instances["CT_small.dcm"]))
    for name, instance in instances.items():
        page.goto(f"{web_server}{viewer_url(instance)}")
        try:
            wait_ready(page, timeout=15_000)
        except Exception:
            shoot(page, f"ts-{Path(name).stem}")
            stacks = page.evaluate("window.__errs")
            raise AssertionError(
                f"{name}: {page.inner_text('#status')} {problems} {stacks}"
            ) from None
        page.wait_for_timeout(200)
        drawn = page.evaluate(CANVAS_SUM, "#stack-element")
        assert drawn and drawn["lit"] > 200, name
        status = page.inner_text("#status")
        assert status == "", f"{name}: {status}"
        shoot(page, f"ts-{Path(name).stem}")
    assert_clean(page, problems)
