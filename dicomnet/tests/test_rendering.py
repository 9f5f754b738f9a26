"""The display pipeline (dicomnet.ingest.rendering), rule by rule on datasets built for each
(PS3.3 C.11, C.7.6.3.1), and on pydicom's CT and MR files: soft tissue and brain are shown
in grey, not saturated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_windowing
from pydicom.sequence import Sequence

from dicomnet.ingest.parsing import read_header
from dicomnet.ingest.previews import render_preview
from dicomnet.ingest.rendering import (
    LINEAR,
    LINEAR_EXACT,
    SIGMOID,
    Window,
    frame_view,
    render_frame,
    to_display,
    window_of,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def grey(
    bits: int = 12, signed: bool = False, photometric: str = "MONOCHROME2", **elements
) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = 1
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = int(signed)
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def item(**elements) -> Dataset:
    found = Dataset()
    for keyword, value in elements.items():
        setattr(found, keyword, value)
    return found


RAMP = np.arange(4096, dtype=np.uint16).reshape(64, 64)  # every 12-bit value once


def pydicom_window(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """pydicom's own windowing, onto 0..255 from its 12-bit output range: an independent
    reference for ours (which maps straight onto 0..255)."""
    out = apply_windowing(values.astype(np.float64), ds)
    return out * 255 / 4095


# ---------------------------------------------------------------------- VOI


@pytest.mark.parametrize("function", [LINEAR, LINEAR_EXACT, SIGMOID])
@pytest.mark.parametrize(("center", "width"), [(2048, 1024), (1000, 300), (3000, 4096)])
def test_window_functions_agree_with_pydicom(function, center, width):
    ds = grey(WindowCenter=center, WindowWidth=width, VOILUTFunction=function)
    display = to_display(ds, RAMP)
    expected = pydicom_window(RAMP, ds)
    assert np.abs(display.astype(float) - expected).max() <= 1
    assert window_of(ds) == Window(center, width, function)


def test_linear_window_ends_black_and_white():
    display = to_display(grey(WindowCenter=2048, WindowWidth=1024), RAMP)
    assert (display[RAMP <= 1535] == 0).all() and (display[RAMP > 2560] == 255).all()
    assert 120 <= display[RAMP == 2048][0] <= 135


def test_a_window_given_replaces_the_objects():
    ds = grey(WindowCenter=100, WindowWidth=10)
    display = to_display(ds, RAMP, window=Window(2048, 4096, LINEAR_EXACT))
    np.testing.assert_allclose(display, np.clip(np.rint(RAMP / 4096 * 255), 0, 255), atol=1)


def test_voi_lut_sequence_from_its_own_range():
    lut = item(LUTDescriptor=[4096, 0, 16])
    lut.add_new("LUTData", "US", list(range(1000, 5096)))  # 1000..5095 of a 16-bit range
    display = to_display(grey(VOILUTSequence=[lut]), RAMP)
    np.testing.assert_allclose(display.astype(float), RAMP.astype(float) * 255 / 4095, atol=1)


def test_without_a_window_the_robust_range():
    display = to_display(grey(), RAMP)
    low, high = np.percentile(RAMP.astype(float), [0.5, 99.5])
    expected = np.clip((RAMP - low) * 255 / (high - low), 0, 255)
    assert np.abs(display - expected).max() <= 1


@pytest.mark.parametrize(
    "window", [{"WindowCenter": None, "WindowWidth": None}, {"WindowCenter": 5, "WindowWidth": 0}]
)
def test_an_empty_or_unusable_window_falls_back_to_the_range(window):
    display = to_display(grey(**window), RAMP)
    assert display.min() == 0 and display.max() == 255
    assert window_of(grey(**window)) is None


# ---------------------------------------------------------------------- modality LUT


def test_rescale_before_the_window():
    ds = grey(RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=0, WindowWidth=800)
    hu = RAMP * 2.0 - 1024
    display = to_display(ds, RAMP)
    expected = np.clip(((hu + 0.5) / 799 + 0.5) * 255, 0, 255)
    expected[hu <= -0.5 - 399.5], expected[hu > -0.5 + 399.5] = 0, 255
    assert np.abs(display - expected).max() <= 1


def test_modality_lut_sequence_then_the_window():
    lut = item(LUTDescriptor=[4096, 0, 16], ModalityLUTType="US")
    lut.add_new("LUTData", "US", [4095 - v for v in range(4096)])  # reverses the image
    ds = grey(ModalityLUTSequence=[lut], WindowCenter=2048, WindowWidth=4096)
    display = to_display(ds, RAMP)
    assert display[0, 0] >= 254 and display[-1, -1] <= 1
    modality = apply_modality_lut(RAMP, ds)
    assert np.abs(display - np.clip(modality.astype(float) * 255 / 4095, 0, 255)).max() <= 1


@pytest.mark.parametrize(("bits", "dtype"), [(8, np.uint8), (16, np.int16), (16, np.uint16)])
def test_8_and_16_bit_signed_or_not(bits, dtype):
    info = np.iinfo(dtype)
    pixels = np.linspace(info.min, info.max, 64 * 64).round().astype(dtype).reshape(64, 64)
    center, width = (int(info.min) + int(info.max)) / 2, int(info.max) - int(info.min)
    ds = grey(bits, signed=info.min < 0, WindowCenter=center, WindowWidth=width)
    display = to_display(ds, pixels)
    assert display.dtype == np.uint8
    assert display[0, 0] <= 1 and display[-1, -1] >= 254
    assert (np.diff(display.ravel().astype(int)) >= 0).all()  # order kept: no wrap-around


# ---------------------------------------------------------------------- polarity


@pytest.mark.parametrize(
    ("photometric", "shape", "inverted"),
    [
        ("MONOCHROME2", None, False),
        ("MONOCHROME2", "IDENTITY", False),
        ("MONOCHROME2", "INVERSE", True),
        ("MONOCHROME1", None, True),
        ("MONOCHROME1", "INVERSE", True),  # DX: INVERSE names MONOCHROME1's own inversion
    ],
)
def test_polarity(photometric, shape, inverted):
    elements = {"WindowCenter": 2048, "WindowWidth": 4096}
    plain = to_display(grey(**elements), RAMP).astype(int)
    if shape:
        elements["PresentationLUTShape"] = shape
    display = to_display(grey(photometric=photometric, **elements), RAMP).astype(int)
    np.testing.assert_array_equal(display, 255 - plain if inverted else plain)


# ---------------------------------------------------------------------- enhanced objects


def enhanced(per_frame: list[tuple[float, float, float]], shared: bool = False) -> Dataset:
    """An enhanced CT-like object: (intercept, centre, width) per frame, in functional groups
    (or the first one only, in the shared group), nothing at the top level."""
    ds = grey(NumberOfFrames=len(per_frame))

    def group(intercept: float, center: float, width: float) -> Dataset:
        return item(
            PixelValueTransformationSequence=[
                item(RescaleIntercept=intercept, RescaleSlope=1, RescaleType="HU")
            ],
            FrameVOILUTSequence=[item(WindowCenter=center, WindowWidth=width)],
        )

    if shared:
        ds.SharedFunctionalGroupsSequence = Sequence([group(*per_frame[0])])
        ds.PerFrameFunctionalGroupsSequence = Sequence([Dataset() for _ in per_frame])
    else:
        ds.SharedFunctionalGroupsSequence = Sequence([Dataset()])
        ds.PerFrameFunctionalGroupsSequence = Sequence([group(*f) for f in per_frame])
    return ds


def test_enhanced_rescale_and_window_from_each_frames_group():
    ds = enhanced([(-1024, 40, 400), (0, 3000, 400)])
    hu = RAMP.astype(float) - 1024
    first = to_display(ds, RAMP, index=0)
    assert (first[hu <= -161] == 0).all() and (first[hu > 240] == 255).all()
    second = to_display(ds, RAMP, index=1)
    assert (second[RAMP <= 2799] == 0).all() and (second[RAMP > 3200] == 255).all()
    assert window_of(ds, 1) == Window(3000, 400)
    assert "WindowCenter" not in ds and "RescaleIntercept" not in ds  # ds left as it was


def test_enhanced_shared_group_applies_to_every_frame():
    ds = enhanced([(-1024, 40, 400), (0, 0, 1)], shared=True)
    for index in (0, 1):
        view = frame_view(ds, index)
        assert (view.RescaleIntercept, view.WindowCenter) == (-1024, 40)


def test_the_frames_group_replaces_the_top_level():
    ds = enhanced([(-1024, 40, 400)])
    ds.WindowCenter, ds.WindowWidth, ds.RescaleIntercept, ds.RescaleSlope = 9, 9, 0, 1
    assert window_of(ds) == Window(40, 400)
    assert frame_view(ds).RescaleIntercept == -1024


def test_an_enhanced_file_renders_through_the_preview(tmp_path: Path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    group = item(
        PixelValueTransformationSequence=[item(RescaleIntercept=-1024, RescaleSlope=1)],
        FrameVOILUTSequence=[item(WindowCenter=40, WindowWidth=400)],
    )
    ds.SharedFunctionalGroupsSequence = Sequence([group])
    for keyword in ("RescaleIntercept", "RescaleSlope"):
        delattr(ds, keyword)
    ds.save_as(tmp_path / "enhanced.dcm")
    moved = render_preview(tmp_path / "enhanced.dcm", ds=read_header(tmp_path / "enhanced.dcm"))
    top = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    top.WindowCenter, top.WindowWidth = 40, 400
    top.save_as(tmp_path / "top.dcm")
    np.testing.assert_array_equal(moved.display, render_frame(tmp_path / "top.dcm", top))


# ---------------------------------------------------------------------- colour


def test_palette_colour_and_rgb_full_scale():
    palette = grey(8, photometric="PALETTE COLOR")
    for colour in ("Red", "Green", "Blue"):
        setattr(palette, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        table = np.arange(256, dtype="<u2") * 257 if colour == "Red" else np.zeros(256, "<u2")
        setattr(palette, f"{colour}PaletteColorLookupTableData", table.tobytes())
    index = np.arange(256, dtype=np.uint8).reshape(16, 16)
    display = to_display(palette, index)
    assert display.shape == (16, 16, 3)
    np.testing.assert_array_equal(display[..., 0], index)
    assert display[..., 1:].max() == 0
    rgb = np.full((4, 4, 3), 2048, np.uint16)
    ds = grey(12, photometric="RGB", SamplesPerPixel=3)
    assert abs(int(to_display(ds, rgb).mean()) - 128) <= 1  # half of 12 bits is mid-grey
    # A window is for grey-scale only: colour is shown as it is.
    assert (to_display(ds, rgb, window=Window(0, 10)) == to_display(ds, rgb)).all()


# ---------------------------------------------------------------------- pydicom's files


def foreground_stats(name: str, threshold: float) -> tuple[float, float]:
    """(fraction at 255, mean) of the display over the pixels whose modality value is above
    ``threshold`` (the body, not the air around it), for the preview's frame."""
    path = Path(get_testdata_file(name))
    header = read_header(path)
    preview = render_preview(path, ds=header)
    full = pydicom.dcmread(path)
    frames = int(full.get("NumberOfFrames", 1) or 1)
    pixels = full.pixel_array[frames // 2] if frames > 1 else full.pixel_array
    modality = apply_modality_lut(pixels, frame_view(full, frames // 2))
    body = preview.display[modality > threshold]
    assert body.size > 0.1 * preview.display.size
    return float((body == 255).mean()), float(body.mean())


@pytest.mark.parametrize(
    ("name", "threshold", "mean_range"),
    [
        # Enhanced CT (a perfusion map): Rescale and Window 49/102 only in functional groups.
        ("eCT_Supplemental.dcm", -1000, (40, 170)),
        ("CT_small.dcm", -500, (60, 190)),  # soft tissue and bone, no window of its own
        ("MR_small.dcm", 200, (40, 200)),
        ("emri_small.dcm", 50, (40, 200)),  # enhanced MR
        ("MR2_UNCR.dcm", 100, (30, 200)),
    ],
)
def test_ct_and_mr_files_are_not_saturated(name, threshold, mean_range):
    if get_testdata_file(name, download=False) is None:
        pytest.skip(f"{name} is in pydicom-data (a dev dependency), not installed")
    saturated, mean = foreground_stats(name, threshold)
    assert saturated < 0.1, f"{saturated:.0%} of the body is white"
    assert mean_range[0] <= mean <= mean_range[1], mean


def test_the_enhanced_ct_is_shown_with_its_own_window():
    path = get_testdata_file("eCT_Supplemental.dcm", download=False)
    if path is None:
        pytest.skip("eCT_Supplemental.dcm is in pydicom-data (a dev dependency)")
    full = pydicom.dcmread(path)
    assert "WindowCenter" not in full
    assert window_of(full, 1) == Window(49, 102)
    hu = full.pixel_array[1].astype(float) - 1024
    display = render_preview(path, ds=read_header(path)).display
    expected = np.clip(((hu - 48.5) / 101 + 0.5) * 255, 0, 255)
    expected[hu <= 48.5 - 50.5], expected[hu > 48.5 + 50.5] = 0, 255
    assert np.abs(display - expected).max() <= 1
