"""WADO-RS rendered resources and thumbnails (PS3.18 §10.4.1.1.3, §9.5, §8.3.5): an instance
or frame as a consumer image (JPEG, PNG or WebP), through the same display pipeline as the
previews (``dicomnet.ingest.rendering``).

- ``choose_media_type``: the image type the ``Accept`` asks for (JPEG when any will do).
- ``parse_parameters``: ``window``, ``viewport`` and ``quality`` (``annotation`` is
  accepted and ignored); ``BadRendering`` with the 400 message otherwise.
- ``parse_frames``: a frame list of the path (1-based numbers).
- ``render_instance``: one frame of a stored instance, windowed, cropped and scaled.
- ``encode``: the image's bytes in the chosen type.

What is rendered (docs/dicomweb-conformance.md): a study's or series' ``rendered`` and
``thumbnail`` are those of its first instance (series, then InstanceNumber order); an
instance's ``rendered`` is its first frame, its ``thumbnail`` its middle frame (as the
previews). A frame list of several frames answers ``multipart/related``, one image a part.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

import numpy as np
from django.core.files.storage import default_storage
from django.utils.http import parse_header_parameters
from PIL import Image
from pydicom import dcmread

from dicomnet.dicomweb.wado import open_stored
from dicomnet.ingest.rendering import (
    LINEAR,
    LINEAR_EXACT,
    SIGMOID,
    Window,
    frame_count,
    render_frame,
)
from dicomnet.models import DicomInstance

JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
DEFAULT_QUALITY = 90
THUMBNAIL_SIZE = 128  # the longer side of a thumbnail without a viewport; never enlarged
WINDOW_FUNCTIONS = {"linear": LINEAR, "linear-exact": LINEAR_EXACT, "sigmoid": SIGMOID}
MAX_VIEWPORT = 8192  # pixels a side: a larger viewport is refused, not allocated


class BadRendering(ValueError):
    """A malformed query parameter or frame list: a 400, with this message."""


class FrameNotFound(LookupError):
    """A frame number beyond the instance's frames: a 404, with this message."""


class NotAnImage(ValueError):
    """The instance holds no pixel data (a report, a structure set...): nothing to render."""


@dataclass(frozen=True)
class Viewport:
    """PS3.18 §8.3.5.1.3: fit the source region (sx, sy, sw, sh; all of the image when
    sw/sh are None) into vw x vh, keeping its aspect ratio."""

    width: int
    height: int
    sx: int = 0
    sy: int = 0
    sw: int | None = None
    sh: int | None = None


@dataclass(frozen=True)
class Parameters:
    window: Window | None = None
    viewport: Viewport | None = None
    quality: int = DEFAULT_QUALITY


# ---------------------------------------------------------------------- negotiation


def choose_media_type(accept: str, *, multipart: bool = False) -> str | None:
    """The image type to answer ``accept`` with, or None (a 406).

    Single images: ``image/jpeg``, ``image/png``, ``image/webp``, ``image/*`` or ``*/*``
    (JPEG). For a multipart answer, ``multipart/related; type="image/..."`` too. The highest
    quality wins; among equals, the first listed.
    """
    best: tuple[float, int, str] | None = None
    for position, token in enumerate((accept or "*/*").split(",")):
        if not token.strip():
            continue
        media_type, params = parse_header_parameters(token)
        media_type = media_type.lower()
        params = {k.lower(): v for k, v in params.items()}
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if q <= 0:
            continue
        if multipart and media_type == "multipart/related":
            media_type = params.get("type", JPEG).lower()
        elif multipart and media_type == "multipart/*":
            media_type = JPEG
        chosen = JPEG if media_type in ("*/*", "image/*") else media_type
        if chosen in FORMATS and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, chosen)
    return best[2] if best else None


# ---------------------------------------------------------------------- parameters


def _numbers(name: str, text: str) -> list[float | None]:
    values: list[float | None] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            values.append(None)
            continue
        try:
            value = float(part)
        except ValueError:
            raise BadRendering(f"{name}: {part!r} is not a number") from None
        if not math.isfinite(value):
            raise BadRendering(f"{name}: {part!r} is not a finite number")
        values.append(value)
    return values


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name) or []
    if len(values) > 1:
        raise BadRendering(f"{name} is given {len(values)} times; give it once")
    return values[0] if values else None


def _parse_window(text: str) -> Window:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise BadRendering(
            "window: expected center,width,function (function: linear, linear-exact or sigmoid)"
        )
    function = WINDOW_FUNCTIONS.get(parts[2].lower())
    if function is None:
        raise BadRendering(
            f"window: unknown function {parts[2]!r}; use linear, linear-exact or sigmoid"
        )
    center, width = _numbers("window", ",".join(parts[:2]))
    if center is None or width is None:
        raise BadRendering("window: the center and the width are required")
    try:
        return Window(center, width, function)
    except ValueError as exc:
        raise BadRendering(f"window: {exc}") from None


def _parse_viewport(text: str) -> Viewport:
    values = _numbers("viewport", text)
    if len(values) not in (2, 6):
        raise BadRendering("viewport: expected vw,vh or vw,vh,sx,sy,sw,sh")
    if any(v is not None and v != int(v) for v in values):
        raise BadRendering("viewport: the values are whole numbers of pixels")
    vw, vh, *region = [None if v is None else int(v) for v in values]
    if vw is None or vh is None or not (0 < vw <= MAX_VIEWPORT and 0 < vh <= MAX_VIEWPORT):
        raise BadRendering(f"viewport: vw and vh are required, from 1 to {MAX_VIEWPORT}")
    sx, sy, sw, sh = region or [None] * 4
    if (sx or 0) < 0 or (sy or 0) < 0:
        raise BadRendering("viewport: sx and sy can't be negative")
    if (sw is not None and sw <= 0) or (sh is not None and sh <= 0):
        raise BadRendering("viewport: sw and sh must be positive (flipping is not supported)")
    return Viewport(vw, vh, sx or 0, sy or 0, sw, sh)


def parse_parameters(query: Mapping[str, Sequence[str]]) -> Parameters:
    """The rendering parameters of a query string (``dict(request.GET.lists())``)."""
    window = _one(query, "window")
    viewport = _one(query, "viewport")
    quality_text = _one(query, "quality")
    quality = DEFAULT_QUALITY
    if quality_text is not None:
        try:
            quality = int(quality_text)
        except ValueError:
            raise BadRendering(f"quality: {quality_text!r} is not a whole number") from None
        if not 1 <= quality <= 100:
            raise BadRendering("quality: from 1 to 100")
    return Parameters(
        window=_parse_window(window) if window is not None else None,
        viewport=_parse_viewport(viewport) if viewport is not None else None,
        quality=quality,
    )


def parse_frames(text: str) -> list[int]:
    """``1,3,5`` to [1, 3, 5]: frame numbers from 1, each once."""
    frames: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise BadRendering(f"frame list: {part!r} is not a frame number (1, 2, ...)")
        if int(part) not in frames:
            frames.append(int(part))
    return frames


# ---------------------------------------------------------------------- rendering


def render_instance(
    instance: DicomInstance,
    *,
    frames: Sequence[int] = (),
    parameters: Parameters = Parameters(),
    thumbnail: bool = False,
) -> list[np.ndarray]:
    """The images of ``instance``: one per frame number of ``frames`` (from 1); without
    frames, its first frame (its middle one for a thumbnail). 8-bit grey or RGB arrays.

    Steps: 1. read the header from storage (a local file by path, S3 through a file object);
    2. check the frame numbers (``FrameNotFound``); 3. decode and map each frame only
    (``render_frame``: modality LUT, VOI or ``parameters.window``, polarity, colour);
    4. crop and scale to the viewport (a thumbnail without one: at most THUMBNAIL_SIZE).
    """
    with _source(instance) as source:
        header = dcmread(source, stop_before_pixels=True)
        if not isinstance(source, str):
            source.seek(0)
        if not all(k in header for k in ("Rows", "Columns", "BitsAllocated")):
            raise NotAnImage("this instance holds no image (no pixel data)")
        count = frame_count(header)
        for number in frames:
            if number > count:
                raise FrameNotFound(f"frame {number} is out of range: the instance has {count}")
        indexes = [n - 1 for n in frames] or [count // 2 if thumbnail else 0]
        images = []
        for index in indexes:
            display = render_frame(source, header, index=index, window=parameters.window)
            images.append(_fit(display, parameters.viewport, thumbnail))
            if not isinstance(source, str):
                source.seek(0)
        return images


class _source:
    """The stored object as a local path when the storage has one, else an open file."""

    def __init__(self, instance: DicomInstance) -> None:
        self.instance = instance
        self.file: BinaryIO | None = None

    def __enter__(self) -> str | BinaryIO:
        if not self.instance.storage_key:
            raise FileNotFoundError(f"instance {self.instance.pk} has no stored object")
        try:
            return default_storage.path(self.instance.storage_key)
        except NotImplementedError:  # S3 and other remote storages
            self.file = file = cast(BinaryIO, open_stored(self.instance))
            return file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _fit(display: np.ndarray, viewport: Viewport | None, thumbnail: bool) -> np.ndarray:
    image = Image.fromarray(display)
    if viewport is None:
        if thumbnail:
            image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
        return np.asarray(image)
    rows, columns = display.shape[:2]
    sx, sy = min(viewport.sx, columns - 1), min(viewport.sy, rows - 1)
    sw = min(viewport.sw or columns - sx, columns - sx)
    sh = min(viewport.sh or rows - sy, rows - sy)
    region = image.crop((sx, sy, sx + sw, sy + sh))
    scale = min(viewport.width / sw, viewport.height / sh)
    size = (max(1, round(sw * scale)), max(1, round(sh * scale)))
    return np.asarray(region.resize(size, Image.Resampling.LANCZOS))


def encode(display: np.ndarray, media_type: str, *, quality: int = DEFAULT_QUALITY) -> bytes:
    """``display`` (8-bit grey or RGB) as ``media_type`` (one of FORMATS)."""
    buf = io.BytesIO()
    image = Image.fromarray(display)
    if media_type == PNG:
        image.save(buf, format="PNG")
    else:
        image.save(buf, format=FORMATS[media_type], quality=quality)
    return buf.getvalue()
