"""WADO-RS frames and bulk data (PS3.18 §10.4.1.1.2, §10.4.1.1.4, §8.7.3).

- ``parse_frame_list``: ``1,3,5`` of the path (frame numbers start at 1).
- ``negotiate_frames``: from the ``Accept`` of a frames retrieve, whether the frames go as
  stored (the pixel data of the stored transfer syntax, compressed or not) or decoded
  (``application/octet-stream``, native little endian: Explicit VR Little Endian's layout);
  the 406 message otherwise.
- ``read_frames``: the frames' bytes, read from the stored object: only the frames asked for
  are read (a native frame by its offset, an encapsulated one through its fragments), or
  decoded one at a time.
- ``read_bulkdata``: the value of one element a metadata ``BulkDataURI`` names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

import numpy as np
from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.encaps import get_frame
from pydicom.pixels import pixel_array
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicomnet.dicomweb.wado import BadRetrieve, NotFound, media_ranges
from dicomnet.ingest import gdcm_jpeg12
from dicomnet.ingest.rendering import check_pixel_budget, frame_count

OCTET_STREAM = "application/octet-stream"
PIXEL_DATA = 0x7FE00010
# PS3.18 Table 8.7.3-2: the media type of a frame in each compressed transfer syntax.
IMAGE_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
_FRAME_LIST = re.compile(r"[1-9][0-9]{0,8}(,[1-9][0-9]{0,8})*")


@dataclass(frozen=True)
class FrameAnswer:
    """How the frames go: ``decoded`` (native little endian) or as stored, and the media
    type of each part, with its ``transfer-syntax`` parameter."""

    decoded: bool
    part_type: str


def parse_frame_list(text: str) -> list[int]:
    """``"1,3,5"`` → ``[1, 3, 5]``; ``BadRetrieve`` (400) for anything else."""
    if not _FRAME_LIST.fullmatch(text):
        raise BadRetrieve(
            f"the frame list {text!r} is not a comma-separated list of frame numbers from 1"
        )
    return [int(n) for n in text.split(",")]


def _native(syntax: str) -> bool:
    return syntax not in IMAGE_MEDIA_TYPES


def _decoded_type() -> str:
    return f"{OCTET_STREAM}; transfer-syntax={ExplicitVRLittleEndian}"


def negotiate_frames(accept: str, stored_syntax: str) -> FrameAnswer | str:
    """The answer the ``Accept`` of a frames retrieve takes, or why none (the 406 message).

    - ``multipart/related; type="application/octet-stream"`` with no ``transfer-syntax``, or
      Explicit VR Little Endian's: decoded. With ``transfer-syntax=*``: as stored, whatever
      the syntax (Cornerstone3D's loader asks so, and reads the part's ``transfer-syntax``).
    - ``multipart/related; type="image/jpeg"`` (``image/jls``, ``image/jp2``...): as stored, if
      that is the stored syntax's media type (and ``transfer-syntax``, if given, the stored one).
    - No Accept, ``*/*`` or ``multipart/*``: native frames decoded, compressed ones as stored.
    """
    stored = stored_syntax or ExplicitVRLittleEndian
    if stored == DeflatedExplicitVRLittleEndian:  # its frames are sent inflated
        stored = ExplicitVRLittleEndian
    stored_type = IMAGE_MEDIA_TYPES.get(stored, OCTET_STREAM)
    as_stored = FrameAnswer(False, f"{stored_type}; transfer-syntax={stored}")
    decoded = FrameAnswer(True, _decoded_type())
    for media_type, params in media_ranges(accept or "*/*"):
        if media_type in ("*/*", "multipart/*"):
            return decoded if _native(stored) else as_stored
        if media_type != "multipart/related":
            continue
        part_type = params.get("type", OCTET_STREAM).lower()
        syntax = params.get("transfer-syntax", "")
        if part_type in (OCTET_STREAM, "application/*", "*/*"):
            if syntax == "*":
                return as_stored
            if syntax in ("", ExplicitVRLittleEndian):
                return decoded
            if syntax == stored:
                return as_stored
        elif part_type in (stored_type, "image/*") and syntax in ("", "*", stored):
            return as_stored
    wanted = IMAGE_MEDIA_TYPES.get(stored, OCTET_STREAM)
    return (
        f"the frames are stored as {stored} ({wanted}) and can be sent that way "
        f'(multipart/related; type="{wanted}"), or decoded '
        f'(multipart/related; type="{OCTET_STREAM}"); transcoding to another syntax is '
        "not supported"
    )


# ---------------------------------------------------------------------- reading frames


def check_frames(instance_frames: int, frames: list[int]) -> None:
    """``NotFound`` (404) when a frame number is past the object's last frame."""
    beyond = [n for n in frames if n > instance_frames]
    if beyond:
        raise NotFound(
            f"the instance has {instance_frames} frame(s); there is no frame "
            f"{', '.join(map(str, beyond))}"
        )


def _native_frame_size(ds: Dataset) -> int:
    bits = int(ds.BitsAllocated)
    if bits % 8:
        raise ValueError(f"Bits Allocated {bits} is not a whole number of bytes")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    return int(ds.Rows) * int(ds.Columns) * samples * bits // 8


def _native_frame(
    ds: Dataset, fp: IO[bytes], elem: DataElement | RawDataElement, index: int
) -> bytes:
    """Frame ``index`` (from 0) of native pixel data: read at its offset in the file when
    the value was deferred, sliced from it when it was small enough to be read."""
    size = _native_frame_size(ds)
    if isinstance(elem, RawDataElement) and elem.value is None:
        fp.seek(elem.value_tell + index * size)
        data = fp.read(size)
    else:
        data = bytes(elem.value or b"")[index * size : (index + 1) * size]
    if len(data) != size:
        raise ValueError("the pixel data ends before the frame")
    return data


def _decoded(ds: Dataset, fp: IO[bytes], index: int) -> bytes:
    """Frame ``index`` decoded: its stored values (no colour conversion), little endian.

    Decoded straight from the file; a deflated object (which pydicom can't decode as a
    stream) from the dataset read whole.
    """
    check_pixel_budget(ds)  # a small compressed frame may declare gigabytes of pixels
    plugin = gdcm_jpeg12.plugin_for(ds)
    fp.seek(0)
    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        frame = pixel_array(dcmread(fp), index=index, raw=True, decoding_plugin=plugin)
    else:
        frame = pixel_array(cast(BinaryIO, fp), index=index, raw=True, decoding_plugin=plugin)
    little = frame.astype(frame.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(little).tobytes()


def read_frames(fp: IO[bytes], frames: list[int], answer: FrameAnswer) -> Iterator[bytes]:
    """The bytes of each frame asked (numbers from 1), in order, one at a time.

    The header is read with the pixel data deferred, so only the frames named are read:
    a native frame at its offset, an encapsulated one from its fragments (the Basic or
    Extended Offset Table when present). A deflated object is inflated whole (pydicom
    can't seek in it); decoding goes through pydicom's plugins, one frame at a time.
    """
    ds = dcmread(fp, defer_size=1024)
    check_frames(frame_count(ds), frames)
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian)))
    elem = ds.get_item(PIXEL_DATA)
    if elem is None:
        raise NotFound("the instance has no pixel data")
    little_native = syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    offset = elem.value_tell if isinstance(elem, RawDataElement) and elem.value is None else None
    for number in frames:
        index = number - 1
        if syntax == DeflatedExplicitVRLittleEndian or (answer.decoded and not little_native):
            yield _decoded(ds, fp, index)
        elif _native(syntax):
            yield _native_frame(ds, fp, elem, index)
        else:
            extended = None
            if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
                extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
            source: IO[bytes] | bytes
            if offset is not None:
                fp.seek(offset)
                source = fp
            else:
                source = bytes(elem.value)
            yield get_frame(
                source, index, number_of_frames=frame_count(ds), extended_offsets=extended
            )


# ---------------------------------------------------------------------- bulk data

_BULK_PATH = re.compile(r"[0-9A-Fa-f]{8}(/[0-9]{1,6}/[0-9A-Fa-f]{8})*")


def parse_bulk_path(text: str) -> list[int | str]:
    """``7FE00010`` or ``00540016/0/00181072`` (of a metadata BulkDataURI): tags as ints,
    item indexes as strings; ``BadRetrieve`` (400) otherwise."""
    if not _BULK_PATH.fullmatch(text):
        raise BadRetrieve(f"{text!r} is not a bulk data path (tag, or tag/item/tag...)")
    steps: list[int | str] = []
    for position, step in enumerate(text.split("/")):
        steps.append(int(step, 16) if position % 2 == 0 else step)
    return steps


def _element_at(ds: Dataset, steps: list[int | str]) -> DataElement:
    node: Dataset = ds
    for position in range(0, len(steps) - 1, 2):
        tag, item = steps[position], int(steps[position + 1])
        elem = node.get(tag) if isinstance(tag, int) else None
        if elem is None or elem.VR != "SQ" or item >= len(elem.value):
            raise NotFound("no such bulk data")
        node = elem.value[item]
    last = steps[-1]
    elem = node.get(last) if isinstance(last, int) else None
    if elem is None or elem.is_empty:
        raise NotFound("no such bulk data")
    return elem


def read_bulkdata(fp: IO[bytes], path: str) -> tuple[bytes, str]:
    """The value of the element at ``path`` and its syntax: binary values as stored
    (Pixel Data too: native or encapsulated, with the object's transfer syntax), text as
    UTF-8. Values are read whole (the largest is Pixel Data, as a BulkDataURI asks)."""
    steps = parse_bulk_path(path)
    ds = dcmread(fp, defer_size=1024)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ExplicitVRLittleEndian))
    elem = _element_at(ds, steps)
    value = elem.value
    if isinstance(value, str):
        return value.encode("utf-8"), ExplicitVRLittleEndian
    if isinstance(value, bytes | bytearray):
        return bytes(value), syntax
    raise NotFound("that element's value is not bulk data")
