"""Pixels to images: a display image and a thumbnail (WebP) from one DICOM object.

Steps: decode one frame (the middle one of a multi-frame object), map it to display values
with ``dicomnet.ingest.rendering`` (modality LUT, VOI, polarity, colour: the rules WADO-RS
``rendered`` follows too), then encode a display image and a thumbnail. pydicom decodes the
compressed syntaxes with the plugins it finds installed, all permissively licensed:
python-gdcm (JPEG baseline, extended, lossless; also JPEG-LS and JPEG 2000, which it is tried
for first), pyjpegls (JPEG-LS), pylibjpeg with openjpeg (JPEG 2000, HTJ2K) and rle, and
Pillow; 12-bit JPEG Extended, which pydicom's own plugins refuse, goes through GDCM by the
plugin in gdcm_jpeg12.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from dicomnet.ingest import gdcm_jpeg12
from dicomnet.ingest.rendering import check_pixel_budget, decode_frame, frame_count, to_display


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
    return frame_count(ds) // 2


def render_preview(
    path: Path | str, *, ds: Dataset, max_size: int = 2048, thumb_size: int = 256
) -> RenderedPreview:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        # ds is a header read without pixels: check the file's own element list.
        from pydicom import dcmread

        # Deferred: only whether the element is there, not its (maybe gigabytes of) value.
        try:
            probe = dcmread(path, specific_tags=["PixelData", "FloatPixelData"], defer_size=1024)
        except Exception as exc:  # the header was read; the rest may be broken (fuzzing)
            raise NoPreview(f"cannot read past the header: {type(exc).__name__}: {exc}") from exc
        if not any(k in probe for k in ("PixelData", "FloatPixelData")):
            raise NoPreview("no pixel data (not an image object)")
    try:
        check_pixel_budget(ds)
    except ValueError as exc:  # TooManyPixels, or Rows/Columns that aren't numbers
        raise NoPreview(f"not decoded: {exc}") from exc
    try:
        index = middle_frame_index(ds)
        frame = decode_frame(path, index, gdcm_jpeg12.plugin_for(ds))
    except Exception as exc:
        raise NoPreview(f"cannot decode pixel data: {type(exc).__name__}: {exc}") from exc
    if frame.ndim == 3 and frame.shape[-1] not in (3, 4):
        frame = frame[frame.shape[0] // 2]  # a volume returned whole: take its middle slice
    try:
        display = to_display(ds, frame, index=index)
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


# Lossy WebP at high quality: a few times faster to encode than PNG and ~20x smaller for
# noisy radiographs. Diagnosis uses the DICOM object itself; this is for display.
IMAGE_FORMAT, IMAGE_SUFFIX, IMAGE_CONTENT_TYPE = "WEBP", ".webp", "image/webp"


def _encode(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=IMAGE_FORMAT, quality=85, method=0)
    return buf.getvalue()
