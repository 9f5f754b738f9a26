"""Stored pixel values to display values (PS3.3 C.11, C.7.6.3.1): the one grey-scale and
colour pipeline behind the previews and WADO-RS ``rendered``/``thumbnail``.

For a grey-scale frame, in order:

1. **The frame's own attributes.** An enhanced multi-frame object (Enhanced CT, MR, XA...)
   keeps Rescale and Window in its functional groups, not at the top level:
   ``frame_view`` lays the frame's Pixel Value Transformation and Frame VOI LUT items
   (per-frame over shared over top level) over the top-level data set.
2. **Modality LUT.** The Modality LUT Sequence, else Rescale Slope and Intercept (pydicom's
   ``apply_modality_lut``): stored values to modality values (HU for CT).
3. **VOI.** A window given by the caller, else the VOI LUT Sequence (its first LUT, mapped
   from its own smallest to largest entry), else the first Window Center/Width with its VOI
   LUT Function (LINEAR, LINEAR_EXACT, SIGMOID), straight onto 0..255 (``apply_window``).
   Without any of these (or with an unusable window), the 0.5th to 99.5th percentile of the
   frame's modality values, so a few burned-out pixels don't flatten the image.
4. **Polarity.** MONOCHROME1, or a Presentation LUT Shape of INVERSE, shows the lowest value
   white (once: a DX MONOCHROME1 image declares INVERSE for that same inversion, PS3.3
   C.8.11.7); IDENTITY changes nothing.
5. **8 bits.** Rounded to the nearest of 0..255.

Colour: PALETTE COLOR through its lookup table (absolute colours, at 8 or 16 bits); RGB as
decoded (pydicom's ``pixel_array`` has already converted YBR_FULL, YBR_FULL_422, YBR_ICT and
YBR_RCT), its full scale ``2**BitsStored - 1``. A window does not apply to colour (PS3.3
C.11.2: VOI is for grey-scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, pixel_array

from dicomnet.ingest import gdcm_jpeg12
from dicomnet.ingest.parsing import BoundedFile

gdcm_jpeg12.register()

LINEAR, LINEAR_EXACT, SIGMOID = "LINEAR", "LINEAR_EXACT", "SIGMOID"
VOI_LUT_FUNCTIONS = (LINEAR, LINEAR_EXACT, SIGMOID)

# The elements each functional group replaces, for one frame, at the top level.
_MODALITY_ELEMENTS = ("ModalityLUTSequence", "RescaleSlope", "RescaleIntercept", "RescaleType")
_VOI_ELEMENTS = (
    "VOILUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "WindowCenterWidthExplanation",
)
_FRAME_GROUPS = (
    ("PixelValueTransformationSequence", _MODALITY_ELEMENTS),
    ("FrameVOILUTSequence", _VOI_ELEMENTS),
)
_MAX_LUT_ENTRIES = 1 << 20


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): centre and width in modality values (HU for CT)."""

    center: float
    width: float
    function: str = LINEAR

    def __post_init__(self) -> None:
        if self.function not in VOI_LUT_FUNCTIONS:
            raise ValueError(f"unknown VOI LUT function {self.function!r}")
        if not (math.isfinite(self.center) and math.isfinite(self.width)):
            raise ValueError("a window's centre and width must be finite numbers")
        if self.width < 1 if self.function == LINEAR else self.width <= 0:
            minimum = "at least 1" if self.function == LINEAR else "more than 0"
            raise ValueError(f"a {self.function} window's width must be {minimum}")


def frame_count(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def frame_view(ds: Dataset, index: int = 0) -> Dataset:
    """``ds`` as seen by frame ``index`` (0-based): the Pixel Value Transformation and Frame
    VOI LUT of its functional groups (per-frame, else shared) replace the top level's.

    A new data set sharing ``ds``'s elements; ``ds`` itself is not changed. An object
    without functional groups comes back as is.
    """
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    frame_item = per_frame[index] if 0 <= index < len(per_frame) else None
    view = ds
    for keyword, replaced in _FRAME_GROUPS:
        group = None
        for item in (frame_item, shared[0] if shared else None):
            if item is not None and item.get(keyword):
                group = item.get(keyword)[0]
                break
        if group is None:
            continue
        if view is ds:
            # A new element dict (copy.copy would share ds's); raw values stay unread.
            view = Dataset(dict(ds.items()))
            if "file_meta" in ds.__dict__:
                view.file_meta = ds.file_meta  # the endianness of OW lookup tables
        for name in replaced:
            if name in view:
                delattr(view, name)
        for elem in group:
            view[elem.tag] = elem
    return view


def window_of(ds: Dataset, index: int = 0) -> Window | None:
    """The object's own first window for frame ``index``, or None (none, empty or unusable)."""
    return _own_window(frame_view(ds, index))


def _own_window(view: Dataset) -> Window | None:
    centers, widths = view.get("WindowCenter"), view.get("WindowWidth")
    if centers is None or widths is None or centers == "" or widths == "":
        return None
    center = centers[0] if _is_multi(centers) else centers
    width = widths[0] if _is_multi(widths) else widths
    function = str(view.get("VOILUTFunction", "") or LINEAR).strip().upper()
    try:
        return Window(float(center), float(width), function)
    except (TypeError, ValueError):
        return None


def _is_multi(value: object) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def apply_window(values: np.ndarray, window: Window) -> np.ndarray:
    """Modality values to 0..255 (float) through ``window`` (PS3.3 C.11.2.1.2.1, C.11.2.1.3)."""
    x = np.asarray(values, dtype=np.float64)
    c, w = window.center, window.width
    if window.function == SIGMOID:
        return 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    if window.function == LINEAR_EXACT:
        low, high = c - w / 2, c + w / 2
        inside = ((x - c) / w + 0.5) * 255.0
    else:
        low, high = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0 if w > 1 else np.zeros_like(x)
    return np.where(x <= low, 0.0, np.where(x > high, 255.0, inside))


def to_display(
    ds: Dataset, frame: np.ndarray, *, index: int = 0, window: Window | None = None
) -> np.ndarray:
    """Map one decoded frame (frame ``index`` of ``ds``) to an 8-bit display image: grey
    (rows, columns) or RGB (rows, columns, 3). ``window`` replaces the object's VOI."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(frame, ds)
        # Palette entries are absolute colours at 8 or 16 bits: full scale is white.
        return _to_uint8(rgb * (255.0 / float(np.iinfo(rgb.dtype).max)))
    if frame.ndim == 3 and frame.shape[-1] in (3, 4):
        rgb = frame[..., :3]  # pixel_array() already converted YBR to RGB
        if rgb.dtype == np.uint8:
            return np.ascontiguousarray(rgb)
        bits = int(ds.get("BitsStored", rgb.dtype.itemsize * 8) or rgb.dtype.itemsize * 8)
        return _to_uint8(rgb.astype(np.float64) * (255.0 / float(2**bits - 1)))

    view = frame_view(ds, index)
    inverse = photometric == "MONOCHROME1" or (
        str(ds.get("PresentationLUTShape", "") or "").strip().upper() == "INVERSE"
    )
    if frame.dtype.kind in "iu":
        low, high = int(frame.min()), int(frame.max())
        if high - low < _MAX_LUT_ENTRIES:
            # Map each stored value once and look the image up in that table: the same
            # result as mapping every pixel, at a fraction of the work on a 16-bit image.
            offsets = np.subtract(frame, low, dtype=np.intp)
            counts = np.bincount(offsets.ravel(), minlength=high - low + 1)
            table = _grey(view, np.arange(low, high + 1), counts, window, inverse)
            return table[offsets]
    return _grey(view, frame, None, window, inverse)


def _grey(
    view: Dataset,
    stored: np.ndarray,
    counts: np.ndarray | None,
    window: Window | None,
    inverse: bool,
) -> np.ndarray:
    """Steps 2 to 5 of the module docstring. ``counts``, when given, says how many pixels
    hold each of ``stored``'s values (then a table's entries rather than an image), so that
    percentiles follow the pixels."""
    values = np.asarray(apply_modality_lut(stored, view), dtype=np.float64)
    window = window or (None if view.get("VOILUTSequence") else _own_window(view))
    if window is not None:
        display = apply_window(values, window)
    elif view.get("VOILUTSequence"):
        display = _voi_lut(values, view)
    else:
        if counts is None:
            low, high = np.percentile(values, [0.5, 99.5]).tolist()
        else:
            present = counts > 0
            low, high = _weighted_percentiles(values[present], counts[present], (0.5, 99.5))
        display = _stretch(values, low, high)
    grey = _to_uint8(display)
    return 255 - grey if inverse else grey


def _voi_lut(values: np.ndarray, view: Dataset) -> np.ndarray:
    """The first VOI LUT, from its own smallest entry (black) to its largest (white)."""
    item = view.VOILUTSequence[0]
    entries, first = int(item.LUTDescriptor[0] or 65536), int(item.LUTDescriptor[1])
    table = np.asarray(apply_voi(np.arange(first, first + entries), view, 0), np.float64)
    mapped = np.asarray(apply_voi(np.rint(values).astype(np.int64), view, 0), np.float64)
    return _stretch(mapped, float(table.min()), float(table.max()))


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.float64)
    return (values - low) * (255.0 / (high - low))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


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


class TooManyPixels(ValueError):
    """A frame larger than ``NEXREL_MAX_DECODED_PIXELS``: it is not decoded."""


def check_pixel_budget(ds: Dataset) -> None:
    """Refuse to decode a frame of more than ``NEXREL_MAX_DECODED_PIXELS`` pixels.

    A compressed frame (RLE, deflate, JPEG) as small as a few hundred bytes may declare
    65535 x 65535 pixels: decoding it would take gigabytes. The budget is counted on the
    header's Rows x Columns x Samples per Pixel, before anything is decoded. Also a
    ``ValueError`` when those are not numbers.
    """
    try:
        rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        samples = int(ds.get("SamplesPerPixel") or 1)
    except Exception as exc:  # several values, text, an undecodable element (fuzzing)
        raise ValueError(f"Rows, Columns or Samples per Pixel is not one number: {exc}") from exc
    pixels = rows * columns * max(samples, 1)
    limit = settings.NEXREL_MAX_DECODED_PIXELS
    if pixels > limit:
        raise TooManyPixels(
            f"the frame is {columns} x {rows} pixels x {samples} samples, more than the "
            f"{limit} a frame may have to be decoded (NEXREL_MAX_DECODED_PIXELS)"
        )


def decode_frame(source: Path | str | BinaryIO, index: int, plugin: str = "") -> np.ndarray:
    """Decode frame ``index`` (0-based) from a file or a seekable file object, without reading
    a large multi-frame object whole.

    pixel_array() can't stream a deflated file, nor one whose dataset VR contradicts its
    transfer syntax: those (rare) are read whole and decoded from the dataset. ``plugin``
    names the pydicom decoding plugin ("": the first of those installed that works).
    A volume returned whole gives its frame ``index``.
    """
    from pydicom import dcmread

    if isinstance(source, Path | str):
        # Values read no larger than the file: a mutated length can't allocate gigabytes.
        with BoundedFile(source) as bounded:
            return decode_frame(cast(BinaryIO, bounded), index, plugin)
    try:
        frame = pixel_array(source, index=index, decoding_plugin=plugin)
    except Exception:
        source.seek(0)
        frame = pixel_array(dcmread(source), index=index, decoding_plugin=plugin)
    return frame


def render_frame(
    source: Path | str | BinaryIO,
    ds: Dataset,
    *,
    index: int = 0,
    window: Window | None = None,
) -> np.ndarray:
    """Frame ``index`` (0-based) of the object at ``source`` (``ds``: its header, pixels or
    not) as an 8-bit display image, grey (rows, columns) or RGB (rows, columns, 3).

    What a viewer should show for the same frame and window: the reference for the canvas.
    Decoding errors propagate (pydicom's, or ValueError for an unusable data set, or
    ``TooManyPixels`` for a frame past the decoding budget).
    """
    check_pixel_budget(ds)
    frame = decode_frame(source, index, gdcm_jpeg12.plugin_for(ds))
    if frame.ndim == 3 and frame.shape[-1] not in (3, 4):
        frame = frame[min(index, frame.shape[0] - 1)]
    return to_display(ds, frame, index=index, window=window)
