"""Pixels to images: a display image and a thumbnail (WebP) from one DICOM object.

Steps: decode one frame (the middle one of a multi-frame object), apply the modality LUT /
rescale, then the VOI LUT or window, invert MONOCHROME1, convert colour spaces, and scale to
8 bits. pydicom decodes the compressed syntaxes with the plugins it finds installed, all
permissively licensed: python-gdcm (JPEG baseline, extended, lossless; also JPEG-LS and
JPEG 2000, which it is tried for first), pyjpegls (JPEG-LS), pylibjpeg with openjpeg
(JPEG 2000, HTJ2K) and rle, and Pillow; 12-bit JPEG Extended, which pydicom's own plugins
refuse, goes through GDCM by the plugin in gdcm_jpeg12.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, pixel_array

from dicomnet.ingest import gdcm_jpeg12

gdcm_jpeg12.register()


class NoPreview(Exception):
    """The image can't be rendered; the object is still stored."""


@dataclass
class RenderedPreview:
    display_image: bytes  # WebP, see IMAGE_FORMAT
    thumbnail_image: bytes
    display: np.ndarray  # 8-bit grey or RGB, what analyzers look at
    width: int
    height: int


def middle_frame_index(ds: Dataset) -> int:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return frames // 2


def to_display(ds: Dataset, frame: np.ndarray) -> np.ndarray:
    """Map decoded stored values to an 8-bit display image (grey or RGB)."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(frame, ds)
        # Palette entries are absolute colours at 8 or 16 bits: full scale is white.
        return _scale_to_uint8(rgb, 0.0, float(np.iinfo(rgb.dtype).max))
    if frame.ndim == 3 and frame.shape[-1] in (3, 4):
        # pixel_array() already converted YBR to RGB.
        rgb = frame[..., :3]
        if rgb.dtype == np.uint8:
            return rgb
        return _scale_to_uint8(rgb, float(rgb.min()), float(rgb.max()))

    if frame.dtype.kind in "iu":
        low, high = int(frame.min()), int(frame.max())
        if high - low < _MAX_LUT_ENTRIES:
            # Map each stored value once and look the image up in that table: the same
            # result as mapping every pixel, at a fraction of the work on a 16-bit image.
            offsets = np.subtract(frame, low, dtype=np.intp)
            counts = np.bincount(offsets.ravel(), minlength=high - low + 1)
            lut = _grey(ds, np.arange(low, high + 1), counts, photometric)
            return lut[offsets]
    return _grey(ds, frame, None, photometric)


_MAX_LUT_ENTRIES = 1 << 20


def _grey(
    ds: Dataset, stored: np.ndarray, counts: np.ndarray | None, photometric: str
) -> np.ndarray:
    """Stored values to 8-bit grey: modality LUT or rescale, then VOI LUT or window (or
    robust percentiles when the device gave none), then MONOCHROME1 inversion.

    ``counts``, when given, says how many pixels hold each of ``stored``'s values (which are
    then a table's entries rather than an image): ranges and percentiles follow the pixels.
    """
    values = apply_modality_lut(stored, ds).astype(np.float64, copy=False)
    present = values if counts is None else values[counts > 0]
    has_voi = "WindowCenter" in ds or "VOILUTSequence" in ds
    if has_voi:
        values = np.asarray(apply_voi_lut(values, ds, index=0, prefer_lut=True), np.float64)
        present = values if counts is None else values[counts > 0]
        low, high = _voi_output_range(ds, present)
    elif counts is None:
        # No window from the device: use robust percentiles rather than min/max, so a few
        # burned-out pixels or a collimator edge don't flatten the image.
        low, high = np.percentile(values, [0.5, 99.5]).tolist()
    else:
        low, high = _weighted_percentiles(present, counts[counts > 0], (0.5, 99.5))
    grey = _scale_to_uint8(values, low, high)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return grey


def _weighted_percentiles(
    values: np.ndarray, counts: np.ndarray, qs: tuple[float, ...]
) -> tuple[float, ...]:
    """``np.percentile`` (linear method) of the data in which each value occurs ``count`` times."""
    order = np.argsort(values, kind="stable")
    ordered, cumulative = values[order], np.cumsum(counts[order])
    total = int(cumulative[-1])

    def at_rank(rank: int) -> float:
        return float(ordered[np.searchsorted(cumulative, rank, side="right")])

    results = []
    for q in qs:
        position = q / 100 * (total - 1)
        below = int(np.floor(position))
        a, b = at_rank(below), at_rank(min(below + 1, total - 1))
        results.append(a + (b - a) * (position - below))
    return tuple(results)


def _voi_output_range(ds: Dataset, values: np.ndarray) -> tuple[float, float]:
    """The range the VOI step maps onto, which becomes black to white.

    For a window that is the window's fixed output range, not the image's own min and max:
    an image lying inside the window keeps the contrast the device chose instead of being
    stretched to full scale (which would also hide a washed-out exposure from the analyzers).
    A VOI LUT (preferred when both are present) keeps the values' own range.
    """
    if ds.get("VOILUTSequence"):
        return float(values.min()), float(values.max())
    probe = np.array([-1e12, 1e12])
    ends = np.asarray(apply_voi_lut(probe.copy(), ds, index=0), dtype=np.float64)
    if np.array_equal(ends, probe):  # window elements present but empty: nothing applied
        return float(values.min()), float(values.max())
    return float(ends.min()), float(ends.max())


def _scale_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def render_preview(
    path: Path | str, *, ds: Dataset, max_size: int = 2048, thumb_size: int = 256
) -> RenderedPreview:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        # ds is a header read without pixels: check the file's own element list.
        from pydicom import dcmread

        probe = dcmread(path, specific_tags=["PixelData", "FloatPixelData"])
        if not any(k in probe for k in ("PixelData", "FloatPixelData")):
            raise NoPreview("no pixel data (not an image object)")
    try:
        frame = _decode_frame(path, middle_frame_index(ds), gdcm_jpeg12.plugin_for(ds))
    except Exception as exc:
        raise NoPreview(f"cannot decode pixel data: {type(exc).__name__}: {exc}") from exc
    if frame.ndim == 3 and frame.shape[-1] not in (3, 4):
        frame = frame[frame.shape[0] // 2]  # a volume returned whole: take its middle slice
    try:
        display = to_display(ds, frame)
    except Exception as exc:
        raise NoPreview(f"cannot map pixel values for display: {exc}") from exc

    image = Image.fromarray(display)
    full = image.copy()
    full.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    thumb = image.copy()
    thumb.thumbnail((thumb_size, thumb_size), Image.Resampling.LANCZOS)
    return RenderedPreview(
        display_image=_encode(full),
        thumbnail_image=_encode(thumb),
        display=display,
        width=image.width,
        height=image.height,
    )


def _decode_frame(path: Path | str, index: int, plugin: str = "") -> np.ndarray:
    """Decode one frame straight from the file, so a large multi-frame object isn't read whole.

    pixel_array() can't stream a deflated file, nor one whose dataset VR contradicts its
    transfer syntax: those (rare) are read whole and decoded from the dataset. ``plugin``
    names the pydicom decoding plugin to use ("": the first of those installed that works).
    """
    try:
        return pixel_array(path, index=index, decoding_plugin=plugin)
    except Exception:
        from pydicom import dcmread

        return pixel_array(dcmread(path), index=index, decoding_plugin=plugin)


# Lossy WebP at high quality: a few times faster to encode than PNG and ~20x smaller for
# noisy radiographs. Diagnosis uses the DICOM object itself; this is for display.
IMAGE_FORMAT, IMAGE_SUFFIX, IMAGE_CONTENT_TYPE = "WEBP", ".webp", "image/webp"


def _encode(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=IMAGE_FORMAT, quality=85, method=0)
    return buf.getvalue()
