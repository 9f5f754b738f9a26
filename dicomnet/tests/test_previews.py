"""render_preview over pydicom's bundled files and over datasets built to pin each display rule.

Every bundled file either renders (and then agrees with a twin in another transfer syntax, or
with the known colours of pydicom's reference image) or fails with a stated reason that pydicom
itself shares. The built datasets prove the display rules: windowing, MONOCHROME1, rescale,
the middle frame, palette colour and YBR.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

from dicomnet.ingest import gdcm_jpeg12
from dicomnet.ingest.parsing import UnreadableDicom, read_header
from dicomnet.ingest.previews import NoPreview, RenderedPreview, render_preview
from tests.fixtures import PYDICOM_TEST_FILES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

INTRAORAL_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.3"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

# Files read_header refuses, so they never reach previews, and why.
REFUSED = {
    "ExplVR_BigEndNoMeta.dcm": "File Meta Information",
    "ExplVR_LitEndNoMeta.dcm": "File Meta Information",
    "no_meta.dcm": "File Meta Information",
    "rtstruct.dcm": "File Meta Information",
    "rtplan_truncated.dcm": "truncated",
}
# Objects that are not images.
NO_PIXELS = {
    "UN_sequence.dcm",
    "empty_charset_LEI.dcm",
    "no_meta_group_length.dcm",
    "priv_SQ.dcm",
    "reportsi.dcm",
    "reportsi_with_empty_number_tags.dcm",
    "rtplan.dcm",
    "test-SR.dcm",
    "waveform_ecg.dcm",
}
# Images pydicom itself cannot decode (see the test_files README and pydicom's own tests);
# the value is why, as it appears in the NoPreview reason.
UNDECODABLE = {
    # "4 of the encoded pixel data bytes replaced with the Sequence Delimiter" (README).
    "JPEG2000-embedded-sequence-delimiter.dcm": "J2K",
    # Pixel data cut short: fewer bytes than Rows x Columns.
    "MR_truncated.dcm": "less than expected",
    # Number of Frames is "1A".
    "badVR.dcm": "1A",
    # No Transfer Syntax UID in the file meta.
    "meta_missing_tsyntax.dcm": "Transfer Syntax UID",
    # Pixel Data without the Image Pixel module.
    "nested_priv_SQ.dcm": "Bits Allocated",
}

ALL_FILES = sorted(p.name for p in PYDICOM_TEST_FILES.glob("*.dcm"))
RENDERABLE = [n for n in ALL_FILES if n not in set(REFUSED) | NO_PIXELS | set(UNDECODABLE)]

# pydicom's SC_rgb reference image: 10 horizontal bands, colour at (row, column 50).
SC_RGB_BANDS = {
    5: (255, 0, 0),
    15: (255, 128, 128),
    25: (0, 255, 0),
    35: (128, 255, 128),
    45: (0, 0, 255),
    55: (128, 128, 255),
    65: (0, 0, 0),
    75: (64, 64, 64),
    85: (192, 192, 192),
    95: (255, 255, 255),
}
SC_RGB_FILES = [
    "SC_rgb_dcmtk_+eb+cr.dcm",  # JPEG baseline, RGB
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",  # JPEG baseline, YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+np.dcm",  # JPEG baseline, YBR_FULL_422
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_gdcm_KY.dcm",  # JPEG 2000
    "SC_rgb_jls_lossy_line.dcm",  # JPEG-LS near-lossless
    "SC_rgb_jls_lossy_sample.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless SV1
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_32bit.dcm",
    "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
]
SC_RGB_TWO_FRAMES = {n for n in SC_RGB_FILES if "2frame" in n}

# The same pixels in different transfer syntaxes must render identically (lossless).
LOSSLESS_TWINS = {
    "MR_small.dcm": [
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_implicit.dcm",
        "MR_small_padded.dcm",
    ],
    "rtdose.dcm": ["rtdose_rle.dcm", "rtdose_expb.dcm"],
    "rtdose_1frame.dcm": ["rtdose_rle_1frame.dcm", "rtdose_expb_1frame.dcm"],
    "liver_1frame.dcm": ["liver_expb_1frame.dcm"],
    "SC_rgb_small_odd.dcm": ["SC_rgb_small_odd_big_endian.dcm"],
    "SC_rgb_jpeg_app14_dcmd.dcm": ["SC_jpeg_no_color_transform_2.dcm"],
    # 12-bit lossy JPEG, the same stream with a misplaced marker ("Fixed version of
    # JPEG-lossy.dcm", README): pylibjpeg-libjpeg refused it, GDCM reads it all the same.
    "JPGExtended.dcm": ["JPEG-lossy.dcm"],
}

# Every compressed or unusual syntax the bundled files cover must render at least once.
SYNTAXES_COVERED = {
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
}


def render(path: Path, **kwargs) -> RenderedPreview:
    """As the pipeline does: a header read without pixels, then the file's own pixels."""
    return render_preview(path, ds=read_header(path), **kwargs)


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "WEBP"
        return image.size


def write_image(
    tmp_path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    syntax: str = ExplicitVRLittleEndian,
    name: str = "image.dcm",
    **elements,
) -> Path:
    """A Digital Intra-oral X-Ray (or SC for colour) file holding `pixels` and `elements`."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2")
    ds.SOPClassUID = SECONDARY_CAPTURE if colour else INTRAORAL_FOR_PRESENTATION
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "Côté^Zoé", "1001", "IO"
    ds.set_pixel_data(pixels, photometric, bits_stored or pixels.dtype.itemsize * 8)
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if syntax in (RLELossless, JPEG2000Lossless):
        ds.compress(syntax, generate_instance_uid=False)
    elif syntax != ExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = syntax
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def ramp(rows: int, columns: int, low: int, high: int, dtype) -> np.ndarray:
    return np.linspace(low, high, rows * columns).round().astype(dtype).reshape(rows, columns)


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 LINEAR window onto 0..255."""
    out = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    out[values <= center - 0.5 - (width - 1) / 2] = 0
    out[values > center - 0.5 + (width - 1) / 2] = 255
    return out


# --- pydicom's bundled files -------------------------------------------------------------


@pytest.mark.parametrize("name", RENDERABLE)
def test_bundled_image_renders(name: str) -> None:
    path = PYDICOM_TEST_FILES / name
    header = read_header(path)
    preview = render_preview(path, ds=header)

    display = preview.display
    assert display.dtype == np.uint8
    assert (preview.height, preview.width) == (header.Rows, header.Columns)
    colour = header.SamplesPerPixel == 3 or header.PhotometricInterpretation == "PALETTE COLOR"
    expected_shape = (header.Rows, header.Columns, 3) if colour else (header.Rows, header.Columns)
    assert display.shape == expected_shape
    assert display.std() > 0, "rendered as a flat image"
    assert image_size(preview.display_image) == (header.Columns, header.Rows)
    thumb_w, thumb_h = image_size(preview.thumbnail_image)
    assert max(thumb_w, thumb_h) <= 256
    assert max(thumb_w, thumb_h) == min(256, max(header.Columns, header.Rows))


@pytest.mark.parametrize("name", sorted(UNDECODABLE))
def test_bundled_image_pydicom_cannot_decode_gives_no_preview_with_reason(name: str) -> None:
    path = PYDICOM_TEST_FILES / name
    with pytest.raises(Exception):  # noqa: B017 - any error: pydicom itself cannot decode it
        _ = pydicom.dcmread(path).pixel_array
    with pytest.raises(NoPreview, match=r"cannot decode pixel data: .+") as caught:
        render(path)
    assert UNDECODABLE[name] in str(caught.value)


@pytest.mark.parametrize("name", sorted(NO_PIXELS))
def test_bundled_non_image_gives_no_preview(name: str) -> None:
    with pytest.raises(NoPreview, match="no pixel data"):
        render(PYDICOM_TEST_FILES / name)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bundled_file_refused_by_read_header_never_reaches_previews(name: str) -> None:
    with pytest.raises(UnreadableDicom, match=REFUSED[name]):
        read_header(PYDICOM_TEST_FILES / name)


def test_every_bundled_file_is_classified() -> None:
    classified = set(REFUSED) | NO_PIXELS | set(UNDECODABLE) | set(RENDERABLE)
    assert classified == set(ALL_FILES)
    assert len(RENDERABLE) > 50


def test_every_bundled_transfer_syntax_renders() -> None:
    # Each RENDERABLE file is rendered by test_bundled_image_renders; here, their syntaxes.
    rendered = {read_header(PYDICOM_TEST_FILES / n).file_meta.TransferSyntaxUID for n in RENDERABLE}
    missing = {uid.name for uid in SYNTAXES_COVERED - rendered}
    assert not missing, f"no bundled file in these syntaxes rendered: {missing}"


def test_htj2k_renders_when_pydicom_data_is_cached() -> None:
    # HTJ2K samples live in the external pydicom-data set; tests never download.
    path = get_testdata_file("HTJ2KLossless_08_RGB.dcm", download=False)
    if path is None:
        pytest.skip("no HTJ2K sample: pydicom-data is not cached and tests never download")
    preview = render(Path(path))
    assert preview.display.ndim == 3 and preview.display.std() > 0


@pytest.mark.parametrize(
    ("reference", "twin"),
    [(ref, twin) for ref, twins in LOSSLESS_TWINS.items() for twin in twins],
)
def test_lossless_twins_render_identically(reference: str, twin: str) -> None:
    expected = render(PYDICOM_TEST_FILES / reference).display
    np.testing.assert_array_equal(render(PYDICOM_TEST_FILES / twin).display, expected)


@pytest.mark.parametrize("name", SC_RGB_FILES)
def test_colour_reference_image_keeps_its_colours(name: str) -> None:
    """RGB, YBR_FULL, YBR_FULL_422, YBR_RCT, JPEG, JPEG-LS, J2K, RLE, 8/16/32-bit: all RGB."""
    display = render(PYDICOM_TEST_FILES / name).display.astype(int)
    assert display.shape == (100, 100, 3)
    for row, colour in SC_RGB_BANDS.items():
        if name in SC_RGB_TWO_FRAMES:
            # The second (middle) frame of these files is the first one inverted.
            colour = tuple(255 - c for c in colour)
        assert np.abs(display[row, 50] - colour).max() <= 8, (row, display[row, 50], colour)


def test_12_bit_jpeg_extended_decodes_through_gdcm_like_libjpeg() -> None:
    """pydicom's own plugins refuse 12-bit JPEG Extended; gdcm_jpeg12 decodes it. The values
    below are pylibjpeg-libjpeg's decode of the file (the GPL decoder this replaced): a lossy
    JPEG decoder may differ by a rounding step, no more."""
    path = PYDICOM_TEST_FILES / "JPGExtended.dcm"
    assert gdcm_jpeg12.plugin_for(read_header(path)) == gdcm_jpeg12.PLUGIN
    pixels = pydicom.pixels.pixel_array(path, decoding_plugin=gdcm_jpeg12.PLUGIN).astype(int)
    assert pixels.shape == (1024, 256) and (pixels.min(), pixels.max()) == (0, 264)
    libjpeg_grid = [[1, 0, 44, 1], [17, 41, 51, 15], [1, 31, 36, 1], [1, 1, 1, 1]]
    assert np.abs(pixels[128::256, 32::64] - libjpeg_grid).max() <= 1
    assert (pixels[420, 140], pixels[512, 128]) == (244, 14)
    assert abs(pixels.mean() - 14.383) < 0.05
    # Any other file is left to the plugins pydicom picks.
    assert gdcm_jpeg12.plugin_for(read_header(PYDICOM_TEST_FILES / "MR_small.dcm")) == ""


def test_deflated_file_renders_like_its_uncompressed_source(tmp_path: Path) -> None:
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "MR_small.dcm")
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = tmp_path / "deflated.dcm"
    ds.save_as(path)
    assert read_header(path).file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    expected = render(PYDICOM_TEST_FILES / "MR_small.dcm").display
    np.testing.assert_array_equal(render(path).display, expected)


def test_palette_file_is_coloured_by_its_lookup_table() -> None:
    from pydicom.pixels import apply_color_lut

    path = PYDICOM_TEST_FILES / "examples_palette.dcm"
    ds = pydicom.dcmread(path)
    expected = (apply_color_lut(ds.pixel_array, ds) >> 8).astype(int)  # 16-bit entries
    display = render(path).display
    assert display.shape == (*ds.pixel_array.shape, 3)
    assert np.abs(display.astype(int) - expected).max() <= 1
    assert (display[..., 0] != display[..., 2]).any(), "palette rendered as grey"


# --- display rules, on datasets built for the purpose -------------------------------------


def test_monochrome1_is_the_inverse_of_the_same_pixels_as_monochrome2(tmp_path: Path) -> None:
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "MR_small.dcm")  # windowed, signed 16-bit
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.save_as(tmp_path / "m2.dcm")
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    m2 = render(tmp_path / "m2.dcm").display
    m1 = render(tmp_path / "m1.dcm").display
    assert m2.std() > 0
    np.testing.assert_array_equal(m1.astype(int), 255 - m2.astype(int))


def test_monochrome1_without_window_is_inverted(tmp_path: Path) -> None:
    pixels = ramp(64, 64, 0, 4095, np.uint16)
    m2 = render(write_image(tmp_path, pixels, bits_stored=12, name="m2.dcm")).display
    m1 = render(
        write_image(tmp_path, pixels, photometric="MONOCHROME1", bits_stored=12, name="m1.dcm")
    ).display
    assert m2[0, 0] == 0 and m2[-1, -1] == 255
    np.testing.assert_array_equal(m1.astype(int), 255 - m2.astype(int))


def test_window_maps_below_to_black_above_to_white_and_linear_between(tmp_path: Path) -> None:
    pixels = ramp(64, 64, 0, 4095, np.uint16)  # every 12-bit value once
    windowed = render(
        write_image(tmp_path, pixels, bits_stored=12, WindowCenter=2048, WindowWidth=1024)
    ).display
    plain = render(write_image(tmp_path, pixels, bits_stored=12, name="plain.dcm")).display

    expected = linear_window(pixels.astype(float), 2048, 1024)
    assert np.abs(windowed.astype(float) - expected).max() <= 1
    assert (windowed[pixels <= 1535] == 0).all()
    assert (windowed[pixels > 2560] == 255).all()
    # Without the window the same pixels spread over the whole ramp instead.
    assert (plain[pixels <= 1535] > 0).any() and (plain[pixels > 2560] < 255).any()
    assert (windowed == 0).sum() > 3 * (plain == 0).sum()


def test_image_inside_a_wide_window_keeps_the_window_contrast(tmp_path: Path) -> None:
    """A flat, washed-out exposure must look flat, not be stretched to black..white."""
    pixels = ramp(64, 64, 1900, 2100, np.uint16)
    display = render(
        write_image(tmp_path, pixels, bits_stored=12, WindowCenter=2048, WindowWidth=4096)
    ).display
    expected = linear_window(pixels.astype(float), 2048, 4096)
    assert np.abs(display.astype(float) - expected).max() <= 1
    assert 110 <= display.min() and display.max() <= 140


def test_window_is_applied_after_the_rescale(tmp_path: Path) -> None:
    # CT-like: stored 0..4095, HU = stored - 1024; soft-tissue window 40/400 in HU.
    pixels = ramp(64, 64, 0, 4095, np.uint16)
    display = render(
        write_image(
            tmp_path,
            pixels,
            bits_stored=12,
            RescaleSlope=1,
            RescaleIntercept=-1024,
            WindowCenter=40,
            WindowWidth=400,
        )
    ).display
    hu = pixels.astype(float) - 1024
    assert (display[hu <= -161] == 0).all()
    assert (display[hu > 240] == 255).all()
    between = (hu > -150) & (hu < 230)
    assert np.abs(display[between] - linear_window(hu, 40, 400)[between]).max() <= 1


def test_first_of_several_windows_is_used(tmp_path: Path) -> None:
    pixels = ramp(64, 64, 0, 4095, np.uint16)
    display = render(
        write_image(
            tmp_path,
            pixels,
            bits_stored=12,
            WindowCenter=[1000, 3000],
            WindowWidth=[500, 500],
        )
    ).display
    expected = linear_window(pixels.astype(float), 1000, 500)
    assert np.abs(display.astype(float) - expected).max() <= 1


def test_voi_lut_sequence_is_preferred_over_the_window(tmp_path: Path) -> None:
    pixels = ramp(64, 64, 0, 4095, np.uint16)
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.add_new("LUTData", "US", list(range(4095, -1, -1)))  # an inverting LUT
    display = render(
        write_image(
            tmp_path,
            pixels,
            bits_stored=12,
            VOILUTSequence=[item],
            WindowCenter=2048,
            WindowWidth=100,
        )
    ).display
    expected = (4095 - pixels.astype(float)) * 255 / 4095
    assert np.abs(display.astype(float) - expected).max() <= 1


def test_empty_window_falls_back_to_the_image_range(tmp_path: Path) -> None:
    pixels = ramp(64, 64, 1000, 3000, np.uint16)
    display = render(
        write_image(tmp_path, pixels, bits_stored=12, WindowCenter=None, WindowWidth=None)
    ).display
    assert display[0, 0] == 0 and display[-1, -1] == 255


@pytest.mark.parametrize(
    ("dtype", "low", "high"),
    [(np.uint16, 0, 65535), (np.int16, -32768, 32767), (np.uint16, 0, 4095)],
)
def test_16_bit_values_are_rescaled_to_8_bits(tmp_path: Path, dtype, low, high) -> None:
    pixels = ramp(256, 256, low, high, dtype)
    bits = 12 if high == 4095 else 16
    display = render(write_image(tmp_path, pixels, bits_stored=bits)).display
    assert display.dtype == np.uint8
    # Robust percentiles: the extreme 0.5 % saturate, the rest is a linear map to 0..255.
    p_low, p_high = np.percentile(pixels.astype(float), [0.5, 99.5])
    expected = np.clip((pixels.astype(float) - p_low) * 255 / (p_high - p_low), 0, 255)
    assert np.abs(display.astype(float) - expected).max() <= 1
    assert display.min() == 0 and display.max() == 255
    assert (np.diff(display.ravel().astype(int)) >= 0).all()  # order kept, no wrap-around
    assert 120 <= display[128, 128] <= 135


def test_negative_rescale_slope_reverses_the_image(tmp_path: Path) -> None:
    pixels = ramp(64, 64, 0, 4095, np.uint16)
    plain = render(
        write_image(tmp_path, pixels, bits_stored=12, RescaleSlope=1, RescaleIntercept=0)
    ).display
    reversed_ = render(
        write_image(
            tmp_path,
            pixels,
            bits_stored=12,
            RescaleSlope=-1,
            RescaleIntercept=4095,
            name="reversed.dcm",
        )
    ).display
    assert np.abs(reversed_.astype(int) - (255 - plain.astype(int))).max() <= 1


def frames_with_a_band_each(count: int) -> np.ndarray:
    """Frame k is black with a white vertical band at columns 6k..6k+5."""
    frames = np.zeros((count, 32, 40), dtype=np.uint8)
    for k in range(count):
        frames[k, :, 6 * k : 6 * k + 6] = 200
    return frames


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless, JPEG2000Lossless])
@pytest.mark.parametrize(("count", "middle"), [(5, 2), (4, 2), (2, 1), (1, 0)])
def test_multi_frame_shows_the_middle_frame(tmp_path: Path, syntax, count, middle) -> None:
    frames = frames_with_a_band_each(count)
    path = write_image(tmp_path, frames, bits_stored=8, syntax=syntax)
    assert int(read_header(path).get("NumberOfFrames", 1)) == count
    display = render(path).display
    assert display.shape == (32, 40)
    bright_columns = np.flatnonzero(display[16] > 127)
    assert bright_columns.tolist() == list(range(6 * middle, 6 * middle + 6))


def test_multi_frame_rendered_value_is_the_middle_frames_value(tmp_path: Path) -> None:
    # An identity window (8-bit, centre 128, width 256) shows stored values as they are.
    frames = np.stack([np.full((16, 16), 30 + 40 * k, dtype=np.uint8) for k in range(5)])
    path = write_image(tmp_path, frames, bits_stored=8, WindowCenter=128, WindowWidth=256)
    display = render(path).display
    assert (display == 110).all()  # frame 2 of 30, 70, 110, 150, 190


@pytest.mark.parametrize("bits", [8, 16])
def test_palette_colour_produces_rgb_from_the_lookup_table(tmp_path: Path, bits: int) -> None:
    index = np.arange(128, dtype=np.uint8).repeat(2).reshape(16, 16)  # uses entries 0..127
    full = 2**bits - 1
    red = np.arange(256) * full // 510  # a dark palette: reaches half scale at the top
    green = np.arange(256) * full // 1020
    blue = np.full(256, full // 4)
    lut_dtype = np.uint8 if bits == 8 else np.dtype("<u2")
    elements = {}
    for colour, table in (("Red", red), ("Green", green), ("Blue", blue)):
        elements[f"{colour}PaletteColorLookupTableDescriptor"] = [256, 0, bits]
        elements[f"{colour}PaletteColorLookupTableData"] = table.astype(lut_dtype).tobytes()
    path = write_image(tmp_path, index, photometric="PALETTE COLOR", bits_stored=8, **elements)

    display = render(path).display
    assert display.shape == (16, 16, 3)
    expected = np.stack([red[index], green[index], blue[index]], axis=-1) * 255 / full
    assert np.abs(display.astype(float) - expected).max() <= 1
    # The palette's colours are absolute: its darkest-red-ends-at-half image is not brightened.
    assert display[..., 0].max() <= 64


def test_ybr_full_is_converted_to_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    ybr = convert_color_space(rgb, "RGB", "YBR_FULL")
    display = render(write_image(tmp_path, ybr, photometric="YBR_FULL", bits_stored=8)).display
    assert display.shape == (24, 32, 3)
    assert np.abs(display.astype(int) - rgb.astype(int)).max() <= 3
    assert np.abs(ybr.astype(int) - rgb.astype(int)).max() > 50  # not passed through as-is


@pytest.mark.parametrize(
    ("shape", "max_size", "display_size", "thumb_size"),
    [
        ((300, 600), 2048, (600, 300), (256, 128)),
        ((600, 300), 200, (100, 200), (128, 256)),
        ((64, 48), 2048, (48, 64), (48, 64)),  # smaller than a thumbnail: not enlarged
    ],
)
def test_thumbnail_fits_thumb_size_and_display_fits_max_size(
    tmp_path: Path, shape, max_size, display_size, thumb_size
) -> None:
    pixels = ramp(*shape, 0, 4095, np.uint16)
    preview = render(write_image(tmp_path, pixels, bits_stored=12), max_size=max_size)
    assert image_size(preview.display_image) == display_size
    assert image_size(preview.thumbnail_image) == thumb_size
    assert (preview.height, preview.width) == shape


def test_corrupt_jpeg_pixel_data_gives_no_preview_with_reason(tmp_path: Path) -> None:
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "SC_rgb_jpeg_dcmtk.dcm")
    rng = np.random.default_rng(1)
    garbage = b"\xff\xd8" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes() + b"\xff\xd9"
    ds.PixelData = encapsulate([garbage])
    path = tmp_path / "corrupt.dcm"
    ds.save_as(path)
    with pytest.raises(NoPreview, match=r"cannot decode pixel data: \w+"):
        render(path)


def test_object_without_pixel_data_gives_no_preview(tmp_path: Path) -> None:
    path = write_image(tmp_path, ramp(8, 8, 0, 255, np.uint8), bits_stored=8)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(NoPreview, match="no pixel data"):
        render(path)


def test_header_with_pixels_read_in_full_renders_the_same(tmp_path: Path) -> None:
    path = PYDICOM_TEST_FILES / "CT_small.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = pydicom.dcmread(path)
    np.testing.assert_array_equal(render_preview(path, ds=full).display, render(path).display)
