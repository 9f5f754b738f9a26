"""Read what we need from a DICOM file's header, without touching pixel data."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from django.conf import settings
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import _dictionary_vr_fast
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import ENCODED_VR, _read_file_meta_info, read_dataset, read_preamble
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from dicomnet.dimse.uids import is_valid_uid
from dicomnet.dimse.values import parse_da, parse_tm

_UID_KEYWORDS = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
# What read_header decodes before it returns, so that decoding errors surface there: the UIDs
# check_uids reads (the Series Instance UID too: found by fuzzing, it was a 0xC211) and the name.
_DECODED_KEYWORDS = (*_UID_KEYWORDS, "PatientName")
_DEFER_SIZE = 64 * 1024


class UnreadableDicom(Exception):
    """The bytes are not a DICOM dataset we can parse."""


class InvalidUids(Exception):
    """The dataset's UIDs are missing, malformed, or contradict the command's."""


class BoundedFile:
    """A file opened for reading that never reads more than it holds in one call.

    pydicom reads a value as ``fp.read(its declared length)``, and Python allocates that
    length before reading: a length mutated to 4 GiB in a 40 KB file is a 4 GiB allocation,
    or a MemoryError. Here a read asks for what is left at most. pydicom reopens the file
    by name, with this class, to read a deferred value: those reads are bounded too.
    """

    def __init__(self, name: Path | str, mode: str = "rb") -> None:
        self._fp = open(name, "rb")  # closed by close(), as a file is
        self.name = str(name)
        self._size = os.fstat(self._fp.fileno()).st_size

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            size = min(size, max(self._size - self._fp.tell(), 0))
        return self._fp.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()

    def close(self) -> None:
        self._fp.close()

    @property
    def closed(self) -> bool:
        return self._fp.closed

    def __enter__(self) -> BoundedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _unreadable_as_such() -> Iterator[None]:
    """Whatever pydicom raises on bytes it can't parse becomes ``UnreadableDicom``."""
    try:
        yield
    except UnreadableDicom:
        raise
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDicom(f"not a readable DICOM file: {exc}") from exc
    except Exception as exc:  # pydicom raises a variety of errors for corrupt data
        raise UnreadableDicom(f"not a readable DICOM file: {type(exc).__name__}: {exc}") from exc


def _decode_what_we_rely_on(ds: Dataset) -> None:
    for keyword in _DECODED_KEYWORDS:
        _ = ds.get(keyword)


def read_header(path: Path | str) -> Dataset:
    """Parse up to (not including) the pixel data; large values stay on disk."""
    with _unreadable_as_such():
        _check_inflated_size(path)
        with BoundedFile(path) as fp:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, defer_size=_DEFER_SIZE)
        _check_not_cut_off(path, ds)
        _decode_what_we_rely_on(ds)
    return ds


# The store path's header is read from memory: the file's first bytes, as many as read_header
# would keep in memory for one value. A header longer than that is left to read_header.
_STORE_PREFIX_BYTES = _DEFER_SIZE
_STORE_TAGS: list[BaseTag | int] = [Tag(keyword) for keyword in _DECODED_KEYWORDS]
_SPECIFIC_CHARACTER_SET = 0x00080005
_PIXEL_DATA_TAGS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})  # as pydicom's _at_pixel_data


def read_store_header(path: Path | str) -> Dataset:
    """What ``store_instance`` needs of a header: read_header's answer, at less cost.

    Returns a data set of the elements read_header decodes (the UIDs and the Patient's Name)
    and the Specific Character Set, with its file meta; it refuses what read_header refuses.
    1. The file's first ``_STORE_PREFIX_BYTES`` are read once and parsed from memory: a
       BytesIO never reads more than it holds (BoundedFile's guarantee) nor calls the system.
    2. The file meta is parsed once (read_header parses it twice, to bound the inflating).
    3. pydicom walks every element up to the pixel data, as read_header's parse does, but
       reads only our values (``specific_tags``) and skips the others' bytes.
    4. The walk notes the highest tag's element, where its value starts and its length: the
       element read_header's cut-off check looks at, looked at the same way.
    Left to read_header, the slower way: a deflated data set (the inflating bound), a missing
    or private transfer syntax, Command Set elements, a header that runs past the prefix, no
    element of ours, and a highest element that read_header decodes instead of checking
    (``_read_header_decodes_it``).
    """
    with _unreadable_as_such():
        with open(path, "rb") as fh:  # one read of a fixed size: bounded as it is
            size = os.fstat(fh.fileno()).st_size
            prefix = fh.read(_STORE_PREFIX_BYTES)
        whole = len(prefix) >= size
        try:
            parsed = _parse_store_prefix(prefix)
        except Exception:
            if whole:
                raise
            return read_header(path)  # perhaps the prefix's end, not the file's
        if parsed is None:
            return read_header(path)
        ds, walk = parsed
        if not (whole or walk.at_pixel_data):
            return read_header(path)  # the walk ran off the prefix: a longer header
        if not ds or walk.highest is None:
            # None of ours (a refusal to come), or pydicom dropped every element at an error
            # inside one (as in read_header, which then finds nothing after the file meta).
            return read_header(path)
        tag, vr, tell, length = walk.highest
        if _read_header_decodes_it(vr, length):
            return read_header(path)
        if tag != _SPECIFIC_CHARACTER_SET:  # decoded by the parse: read_header's check skips it
            _check_last_element_whole(tag, tell, length, size)
        _decode_what_we_rely_on(ds)
    return ds


class _Walk:
    """pydicom's ``stop_when`` for the data set: stop at the pixel data, as read_header's
    parse does, and note the tag, VR, value offset and length of the element of the highest
    tag (of its last occurrence, as a Dataset keeps it)."""

    def __init__(self, fp: BinaryIO | None) -> None:
        self._tell = fp.tell if fp is not None else int
        self._start = fp.tell() if fp is not None else 0
        self.highest: tuple[int, str | None, int, int] | None = None
        self.at_pixel_data = False

    def stop_when(self, tag: BaseTag, vr: str | None, length: int) -> bool:
        number = int(tag)  # BaseTag compares in Python: a tenth of the walk's time
        at_pixel_data = number in _PIXEL_DATA_TAGS
        tell = self._tell()
        if tell < self._start + 8:
            return at_pixel_data  # pydicom's peek at the first VR, not yet an element
        if at_pixel_data:
            self.at_pixel_data = True
            return True
        if self.highest is None or number >= self.highest[0]:
            self.highest = (number, vr, tell, length)
        return False


def _read_header_decodes_it(vr: str | None, length: int) -> bool:
    """Whether read_header's parse leaves no raw value (None) to this element: deferred (over
    ``_DEFER_SIZE``), or empty of a VR whose raw empty value is None. Its cut-off check then
    decodes the element (pydicom's ``get_item``), which may raise, and checks nothing."""
    if length == 0xFFFFFFFF:
        return False  # a sequence parsed whole, or a value read to its delimiter
    return length > _DEFER_SIZE or (length == 0 and empty_value_for_VR(vr, raw=True) is None)


def _parse_store_prefix(prefix: bytes) -> tuple[Dataset, _Walk] | None:
    """pydicom's ``read_partial`` for the store path, or None for what it leaves to read_header:
    the plain case walked by hand (``_walk_by_hand``), any other by pydicom."""
    by_hand = _walk_by_hand(prefix)
    if by_hand is not None:
        return by_hand
    return _parse_store_prefix_with_pydicom(io.BytesIO(prefix))


def _parse_store_prefix_with_pydicom(fp: BinaryIO) -> tuple[Dataset, _Walk] | None:
    read_preamble(fp, False)  # as dcmread: no "DICM", an error
    meta = _read_file_meta_info(fp)
    encoding = _encoding_of(meta.get("TransferSyntaxUID"))
    if encoding is None or _starts_with_a_command_set(fp):
        return None
    walk = _Walk(fp)
    # No value is deferred (defer_size None): ours are read from memory, at most the prefix.
    ds = read_dataset(fp, *encoding, stop_when=walk.stop_when, specific_tags=_STORE_TAGS)
    ds.file_meta = meta
    return ds, walk


# ------------------------------------------------------------------ the walk by hand
_VR_BYTES = frozenset(vr for vr in ENCODED_VR if len(vr) == 2)
_LONG_LENGTH_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_LONG_LENGTH = struct.Struct("<L")
_ITEM_DELIMITER = 0xFFFEE00D
_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_TAG_AND_LENGTH = struct.Struct("<HHL")
_MAX_DEPTH = 16  # sequences in sequences: deeper ones are pydicom's to read
_UNDEFINED = 0xFFFFFFFF
_STORE_TAG_NUMBERS = frozenset({*(int(tag) for tag in _STORE_TAGS), _SPECIFIC_CHARACTER_SET})
_DICM = slice(128, 132)


def _walk_by_hand(prefix: bytes) -> tuple[Dataset, _Walk] | None:
    """``_parse_store_prefix_with_pydicom``'s answer, for the plain case, at a fraction of its
    cost: little endian, every VR pydicom knows, no undefined length but a sequence's, nothing
    past the prefix.

    pydicom's element generator runs a few Python statements and builds a tag object per
    element, for every element up to the pixel data, and reads the File Meta the same way:
    the larger part of the header parse (docs/benchmarks.md). Here a struct call reads each
    element's header, and only our values and the File Meta's become ``RawDataElement``s, as
    pydicom makes them (same tag, VR, length, value and offset); the Datasets are built as
    ``read_dataset`` builds them. A sequence of undefined length is skipped as pydicom's
    ``read_sequence`` reads it, item by item and element by element (``_sequence_end``).
    Anything else is ``None``, and pydicom reads it: a VR it would guess at or switch encoding
    on, any other undefined length, big endian, an element running past the prefix, the end
    of the prefix before the pixel data, an item delimiter at the top level, and any error (so
    that pydicom raises its own).
    Tested against pydicom's reading element by element (``test_store_header.py``).
    """
    try:
        return _walk(prefix)
    except Exception:
        return None


def _walk(prefix: bytes) -> tuple[Dataset, _Walk] | None:
    if prefix[_DICM] != b"DICM":
        return None
    meta_raw, offset = _elements(prefix, 132, implicit=False, meta=True)
    if meta_raw is None or not meta_raw:
        return None
    meta = FileMetaDataset(Dataset(meta_raw))
    meta.set_original_encoding(False, True, default_encoding)
    first = next(iter(meta_raw))
    meta[first]  # as _read_file_meta_info: an element it cannot convert, left to it
    encoding = _encoding_of(meta.get("TransferSyntaxUID"))
    if encoding is None or not encoding[1] or prefix[offset : offset + 2] == b"\x00\x00":
        return None  # guessed, deflated, private, big endian; or a Command Set first
    walk = _Walk(None)
    raw, _ = _elements(prefix, offset, implicit=encoding[0], meta=False, walk=walk)
    if raw is None:
        return None
    ds = Dataset(raw, parent_encoding=default_encoding)
    charset = raw.get(BaseTag(_SPECIFIC_CHARACTER_SET))
    if isinstance(charset, RawDataElement):
        names = convert_raw_data_element(charset).value
        ds.set_original_encoding(encoding[0], True, convert_encodings(names))
    else:
        ds.set_original_encoding(encoding[0], True, default_encoding)
    ds.file_meta = meta
    return ds, walk


def _elements(
    prefix: bytes, offset: int, *, implicit: bool, meta: bool, walk: _Walk | None = None
) -> tuple[dict[BaseTag, DataElement | RawDataElement] | None, int]:
    """The File Meta's elements (all of group 0002), or the data set's (ours; ``walk`` noting
    the highest and the pixel data), from ``offset``; ``None`` where pydicom must read them."""
    end = len(prefix)
    raw: dict[BaseTag, DataElement | RawDataElement] = {}
    first = True
    while True:
        if end - offset < 8:
            return None, offset  # pydicom's end of file: its answer, not ours
        if first and _looks_explicit(prefix, offset) == implicit:
            return None, offset  # pydicom would switch the data set's VR encoding
        first = False
        header = _element_header(prefix, offset, implicit)
        if header is None:
            return None, offset  # pydicom's error: a long length cut short
        tag, vr, length, value_tell, known = header
        group = tag >> 16
        if tag == _ITEM_DELIMITER:
            return None, offset
        if meta:
            if group != 2:
                return raw, offset  # where the data set starts
        elif tag in _PIXEL_DATA_TAGS:
            assert walk is not None
            walk.at_pixel_data = True
            return raw, offset
        if not known:
            return None, offset
        if walk is not None and (walk.highest is None or tag >= walk.highest[0]):
            walk.highest = (tag, vr, value_tell, length)
        if length == _UNDEFINED:
            # A sequence, skipped as pydicom reads it; none of ours, nor in the File Meta.
            after = None
            if not meta and tag not in _STORE_TAG_NUMBERS and _is_sequence(tag, vr):
                after = _sequence_end(prefix, value_tell, implicit, 0)
            if after is None:
                return None, offset
            offset = after
            continue
        following = value_tell + length
        if following > end:
            return None, offset
        if meta or tag in _STORE_TAG_NUMBERS:
            # pydicom's empty raw value is bytes or None for every VR (raw=True)
            value = prefix[value_tell:following] if length else empty_value_for_VR(vr, raw=True)
            key = BaseTag(tag)
            raw[key] = RawDataElement(key, vr, length, value, value_tell, implicit, True)  # type: ignore[arg-type]
        offset = following


def _element_header(
    prefix: bytes, offset: int, implicit: bool
) -> tuple[int, str | None, int, int, bool] | None:
    """(tag, VR, length, value offset, VR known) of the element at ``offset`` (8 bytes there),
    read in pydicom's order: the long length of an explicit VR first, even for an element it
    will stop at. ``None`` where that long length is cut short (pydicom raises). An unknown
    VR (pydicom reads the element as implicit VR, or guesses a 2-byte length) is not known,
    with the tag still right: pydicom's stops (at group 0003 after the File Meta, at the pixel
    data) come first."""
    group, element, vr_bytes, length = _EXPLICIT_HEADER.unpack_from(prefix, offset)
    tag = group << 16 | element
    value_tell = offset + 8
    if implicit:
        return tag, None, _LONG_LENGTH.unpack_from(prefix, offset + 4)[0], value_tell, True
    if vr_bytes not in _VR_BYTES:
        return tag, None, length, value_tell, False
    vr = vr_bytes.decode("ascii")
    if vr in _LONG_LENGTH_VRS:
        if len(prefix) - value_tell < 4:
            return None
        return tag, vr, _LONG_LENGTH.unpack_from(prefix, value_tell)[0], value_tell + 4, True
    return tag, vr, length, value_tell, True


def _is_sequence(tag: int, vr: str | None) -> bool:
    """An undefined length that pydicom reads as a sequence: SQ, or in implicit VR a tag its
    dictionary says is one (a private tag it would look ahead for: not here)."""
    if vr is not None:
        return vr == "SQ"  # UN too would be, by pydicom's inference: left to it
    try:
        return _dictionary_vr_fast(tag) == "SQ"
    except KeyError:
        return False


def _sequence_end(prefix: bytes, offset: int, implicit: bool, depth: int) -> int | None:
    """Where an undefined-length sequence's value starting at ``offset`` ends (after its
    delimiter), walked as pydicom's ``read_sequence`` reads it; ``None`` for anything it
    reads with a guess or a tolerance (no item tag, a delimiter with a length, an item's
    elements overrunning it, an item in the other VR encoding) and past ``_MAX_DEPTH``."""
    if depth > _MAX_DEPTH:
        return None
    end = len(prefix)
    while True:
        if end - offset < 8:
            return None
        group, element, length = _TAG_AND_LENGTH.unpack_from(prefix, offset)
        tag = group << 16 | element
        offset += 8
        if tag == _SEQUENCE_DELIMITER:
            return offset if length == 0 else None
        if tag != _ITEM:
            return None
        if length == _UNDEFINED:
            after = _item_end(prefix, offset, None, implicit, depth)
        elif offset + length > end:
            return None
        else:
            after = _item_end(prefix, offset, offset + length, implicit, depth)
            if after != offset + length:
                return None
        if after is None:
            return None
        offset = after


def _item_end(
    prefix: bytes, offset: int, stop: int | None, implicit: bool, depth: int
) -> int | None:
    """Where a sequence item's elements end: at ``stop`` (a defined length; an element past
    it is returned as is, for the caller to refuse) or after its delimiter (``stop`` None)."""
    end = len(prefix)
    while stop is None or offset < stop:
        if end - offset < 8:
            return None
        header = _element_header(prefix, offset, implicit)
        if header is None:
            return None
        tag, vr, length, value_tell, known = header
        if tag == _ITEM_DELIMITER:
            # pydicom ends the item there, after the header as it read it, whatever its length
            return value_tell if stop is None else None
        if tag >> 16 == 0xFFFE or not known:
            # an item or a sequence's delimiter where an element belongs; or a VR that
            # pydicom would guess, or read the item as implicit VR for
            return None
        if length == _UNDEFINED:
            if not _is_sequence(tag, vr):
                return None
            after = _sequence_end(prefix, value_tell, implicit, depth + 1)
            if after is None:
                return None
            offset = after
            continue
        offset = value_tell + length
        if offset > end:
            return None
    return offset


def _looks_explicit(prefix: bytes, offset: int) -> bool:
    """pydicom's test of a data set's first element (``_is_implicit_vr``): two capitals."""
    a, b = prefix[offset + 4], prefix[offset + 5]
    return 0x40 < a < 0x5B and 0x40 < b < 0x5B


def _starts_with_a_command_set(fp: BinaryIO) -> bool:
    """Whether the first tag after the file meta is of group 0000, which ``read_partial``
    reads as Command Set elements (always Implicit VR Little Endian) before the data set."""
    start = fp.tell()
    group = fp.read(2)
    fp.seek(start)
    return group == b"\x00\x00"


def _encoding_of(syntax: str | None) -> tuple[bool, bool] | None:
    """(implicit VR, little endian) of the data set, as ``read_partial`` picks them; None
    where it guesses (no syntax), inflates (deflated) or asks the registry (private)."""
    if (
        syntax is None
        or syntax == DeflatedExplicitVRLittleEndian
        or syntax in PrivateTransferSyntaxes
    ):
        return None
    if syntax == ImplicitVRLittleEndian:
        return True, True
    if syntax == ExplicitVRBigEndian:
        return False, False
    return False, True  # any other syntax is explicit VR little endian (PS3.5 A.4)


def _check_inflated_size(path: Path | str) -> None:
    """Refuse a deflated object that inflates past ``NEXREL_MAX_INFLATED_BYTES``.

    pydicom inflates a Deflated Explicit VR Little Endian data set whole, in memory, before
    reading a single element of it: a few MB of deflated zeros would become gigabytes in
    the listener. Inflate it here first, a piece at a time and discarding the output,
    stopping as soon as the limit is passed.
    """
    limit = settings.NEXREL_MAX_INFLATED_BYTES
    with BoundedFile(path) as fp:
        read_preamble(fp, False)  # type: ignore[arg-type]  # as dcmread: no "DICM", an error
        meta = _read_file_meta_info(fp)  # type: ignore[arg-type]  # pydicom's, as dcmread
        if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
            return
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        inflated = 0
        while chunk := fp.read(1024 * 1024):
            # At the end of the stream, zlib keeps the bytes after it as unconsumed_tail
            # when max_length was given: stop on eof, or this loops forever (fuzzing).
            while chunk and not inflater.eof:
                inflated += len(inflater.decompress(chunk, 1024 * 1024))
                if inflated > limit:
                    raise UnreadableDicom(
                        f"not a readable DICOM dataset: its deflated data set inflates to more "
                        f"than {limit} bytes (NEXREL_MAX_INFLATED_BYTES)"
                    )
                chunk = inflater.unconsumed_tail
            if inflater.eof:
                return


def _check_not_cut_off(path: Path | str, ds: Dataset) -> None:
    """pydicom stops quietly at the end of a file, so a cut-off object parses as a shorter one.

    Refuse an empty data set, and a last element whose declared length runs past the end of
    the file or is followed by a stub too short to be an element header. (A cut exactly on an
    element boundary can't be told from a complete object.)
    """
    if not ds:
        raise UnreadableDicom("not a readable DICOM dataset: nothing after the file meta")
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return  # offsets are in the inflated stream, not the file
    last = ds.get_item(max(ds.keys()))
    tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if tell is None or length is None:
        return  # already converted
    _check_last_element_whole(int(last.tag), tell, length, os.path.getsize(path))


def _check_last_element_whole(tag: int, tell: int, length: int, size: int) -> None:
    """The element of the highest tag, its value at ``tell`` in a file of ``size`` bytes:
    not cut off (in a well-formed file, it is the last before the pixel data)."""
    if length == 0xFFFFFFFF:
        return  # an undefined-length sequence, read to its delimiter
    if tell + length > size or 0 < size - (tell + length) < 8:
        raise UnreadableDicom(
            f"not a readable DICOM dataset: truncated, element {BaseTag(tag)} needs {length} "
            f"bytes at offset {tell} but the file is {size} bytes"
        )


def check_uids(
    ds: Dataset,
    *,
    expected_sop_instance_uid: str | None = None,
    expected_sop_class_uid: str | None = None,
) -> None:
    # pydicom parses almost any bytes into some elements. When nothing identifies a DICOM
    # object, the data is unreadable (0xC000), not a dataset with bad UIDs (0xA900).
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        raise UnreadableDicom("not a readable DICOM dataset: no SOP Class or SOP Instance UID")
    for keyword in _UID_KEYWORDS:
        value = str(ds.get(keyword, "") or "")
        if not is_valid_uid(value):
            raise InvalidUids(f"{keyword} {value[:80]!r} is missing or not a valid UID")
    if expected_sop_instance_uid and ds.SOPInstanceUID != expected_sop_instance_uid:
        raise InvalidUids(
            f"dataset SOPInstanceUID {ds.SOPInstanceUID} differs from the command's "
            f"{expected_sop_instance_uid}"
        )
    if expected_sop_class_uid and ds.SOPClassUID != expected_sop_class_uid:
        raise InvalidUids(
            f"dataset SOPClassUID {ds.SOPClassUID} differs from the command's "
            f"{expected_sop_class_uid}"
        )


def value_of(ds: Dataset, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword)``, or ``default`` when the element can't be decoded.

    pydicom decodes an element when it is first read: a VR no edition defines, or a value
    that doesn't fit its VR, raises then. One such element must not stop the processing
    of an object the listener has already stored: it reads as absent.
    """
    try:
        return ds.get(keyword, default)
    except Exception:
        return default


def text(ds: Dataset, keyword: str, limit: int = 200) -> str:
    value = value_of(ds, keyword, "")
    if value is None or isinstance(value, pydicom.Sequence | Dataset):
        return ""  # a sequence where text belongs: str() would decode every item
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()[:limit]


def integer(ds: Dataset, keyword: str) -> int | None:
    try:
        value = value_of(ds, keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class InstanceHeader:
    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    patient_id: str
    patient_name: str
    patient_birth_date: dt.date | None
    patient_sex: str
    accession_number: str
    study_date: dt.date | None
    study_time: dt.time | None
    study_description: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    frames: int
    scheduled_step_ids: tuple[str, ...]


def header_fields(ds: Dataset) -> InstanceHeader:
    meta = getattr(ds, "file_meta", None)
    steps = tuple(
        text(item, "ScheduledProcedureStepID", 16)
        for item in value_of(ds, "RequestAttributesSequence") or []
        if text(item, "ScheduledProcedureStepID", 16)
    )
    return InstanceHeader(
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
        transfer_syntax_uid=str(meta.get("TransferSyntaxUID", "")) if meta else "",
        patient_id=text(ds, "PatientID", 64),
        patient_name=text(ds, "PatientName", 200),
        patient_birth_date=parse_da(value_of(ds, "PatientBirthDate")),
        patient_sex=text(ds, "PatientSex", 16),
        accession_number=text(ds, "AccessionNumber", 16),
        study_date=parse_da(value_of(ds, "StudyDate") or value_of(ds, "ContentDate")),
        study_time=parse_tm(value_of(ds, "StudyTime") or value_of(ds, "ContentTime")),
        study_description=text(ds, "StudyDescription"),
        modality=text(ds, "Modality", 16),
        series_number=integer(ds, "SeriesNumber"),
        series_description=text(ds, "SeriesDescription"),
        body_part_examined=text(ds, "BodyPartExamined", 64),
        instance_number=integer(ds, "InstanceNumber"),
        rows=integer(ds, "Rows"),
        columns=integer(ds, "Columns"),
        frames=integer(ds, "NumberOfFrames") or 1,
        scheduled_step_ids=steps,
    )


def json_metadata(ds: Dataset) -> dict:
    """The header as DICOM JSON (PS3.18 F), bulk values left out."""

    def drop_bulk(_element) -> str:
        return ""

    try:
        return ds.to_json_dict(bulk_data_threshold=4096, bulk_data_element_handler=drop_bulk)
    except Exception as exc:  # a malformed element must not stop ingest
        return {"_error": f"metadata not serialisable: {exc}"}
