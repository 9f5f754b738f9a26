"""STOW-RS, the Store transaction (PS3.18 §10.5): a multipart/related body, streamed.

- ``boundary_of``: the boundary of a ``multipart/related; type="application/dicom"``
  Content-Type; ``UnsupportedMedia`` (a 415) for any other media type, ``MalformedBody``
  (a 400) for one without a usable boundary.
- ``check_length``, ``read_chunks``: the limit of a body (``BodyTooLarge``, a 413), by its
  declared Content-Length before reading, and while reading.
- ``iter_parts``: the body's parts, read from an iterable of chunks (``read_chunks`` makes
  one of a file-like request), each written straight into a temp file under the spool's
  temp area (the directory of C-STORE and uploads, so ``store_instance`` can rename it into
  the spool). The buffer held in memory never exceeds a chunk plus the delimiter (or the
  part headers, at most ``MAX_HEADER_BYTES``): a study is never held in memory. A part the
  body cuts short, or with no blank line after its headers (``malformed``: then the last
  part yielded), or whose temp file cannot be written, comes as a ``Part`` with an
  ``error`` and no file (its temp file is removed).
- ``response_dataset``: the PS3.18 store response (Table 10.5.3-1) as DICOM JSON.

The view (``views.store``) stores each part with ``dicomnet.ingest.store.store_instance``
before reading the next, and answers once every part has been processed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.utils.http import parse_header_parameters
from pydicom import Dataset
from pydicom.sequence import Sequence

from dicomnet.net.incoming import spool_tmp_dir

DICOM = "application/dicom"
CHUNK = 64 * 1024  # bytes read from the request at a time
MAX_HEADER_BYTES = 16 * 1024  # the headers of one part


class UnsupportedMedia(ValueError):
    """The request's Content-Type is not multipart/related of application/dicom: a 415."""


class MalformedBody(ValueError):
    """multipart/related of application/dicom, but its parts can't be told apart: a 400."""


def boundary_of(content_type: str) -> str:
    media_type, params = parse_header_parameters(content_type or "")
    params = {k.lower(): v for k, v in params.items()}
    if media_type.lower() != "multipart/related":
        raise UnsupportedMedia(
            f'this resource takes multipart/related; type="{DICOM}" only, not '
            f"{media_type or 'a body without Content-Type'}"
        )
    part_type = params.get("type", "").lower()
    if part_type != DICOM:
        raise UnsupportedMedia(
            f'only multipart/related; type="{DICOM}" is supported, not type="{part_type}"'
        )
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 70:
        # The right media type, badly formed: a bad request (400), not an unsupported one.
        raise MalformedBody(
            "the multipart/related Content-Type has no boundary parameter (or one longer "
            "than 70 characters, RFC 2046 5.1.1): its parts can't be found"
        )
    return boundary


def is_dicom_part(content_type: str) -> bool:
    """Whether a part's Content-Type is application/dicom (with any parameters)."""
    media_type, _ = parse_header_parameters(content_type)
    return media_type.lower() == DICOM


class BodyTooLarge(Exception):
    """The body is larger than the limit (``DICOMWEB_MAX_STOW_BYTES``): a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than the limit of {limit} bytes")
        self.limit = limit


def check_length(content_length: str, limit: int) -> None:
    """Refuse a declared Content-Length over ``limit`` before reading the body."""
    try:
        declared = int(content_length or 0)
    except ValueError:
        return  # not a length: Django reads no body then (a WSGI request's stream is empty)
    if declared > limit:
        raise BodyTooLarge(limit)


def read_chunks(
    stream: IO[bytes] | Any, chunk: int = CHUNK, *, limit: int | None = None
) -> Iterator[bytes]:
    """``stream.read(chunk)`` until it is exhausted (a Django request is file-like).

    With a ``limit``, raises ``BodyTooLarge`` as soon as more than ``limit`` bytes have been
    read, before yielding the chunk that crosses it: a body without a Content-Length (or
    one larger than declared) is never read past the limit plus a chunk."""
    total = 0
    while data := stream.read(chunk):
        total += len(data)
        if limit is not None and total > limit:
            raise BodyTooLarge(limit)
        yield data


@dataclass
class Part:
    """One part of the body: a complete temp file (``path``) or why not (``error``).

    The consumer owns ``path``: it must remove it once done (``store_instance`` renames it
    on success)."""

    index: int  # from 1, in the order of the body
    headers: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    error: str = ""
    out_of_resources: bool = False  # the error is the spool's (disk full...), not the body's
    malformed: bool = False  # the error is the body's framing: nothing after it is read

    @classmethod
    def spool_failure(cls, index: int, headers: dict[str, str], exc: OSError) -> Part:
        """The part could not be written to the spool (disk full, not writable...)."""
        return cls(index, headers, error=f"cannot write the spool: {exc}", out_of_resources=True)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass
class ParseStats:
    """What the parser held in memory at most (for tests and logs)."""

    peak_buffer: int = 0
    parts: int = 0


class _TempPart:
    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".stow")
        self.path = Path(name)
        self.file: IO[bytes] | None = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        if data and self.file is not None:
            self.file.write(data)

    def close(self) -> Path:
        if self.file is not None:
            self.file.close()
            self.file = None
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            if self.file is not None:
                self.file.close()
                self.file = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _parse_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return headers


def iter_parts(
    chunks: Iterable[bytes],
    boundary: str,
    *,
    tmp_dir: Path | None = None,
    stats: ParseStats | None = None,
) -> Iterator[Part]:
    """The parts of a multipart body (RFC 2046 §5.1), each in its own temp file.

    The preamble before the first delimiter and the epilogue after the closing one are
    ignored. Each part is yielded once its closing delimiter has been read, so the consumer
    can store it before the next one is read. A part cut short by the end of the body (or
    one whose headers exceed ``MAX_HEADER_BYTES``) is yielded with an ``error`` and no file.
    """
    stats = stats if stats is not None else ParseStats()
    directory = tmp_dir if tmp_dir is not None else spool_tmp_dir()
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    keep = len(delimiter) + 4  # what may still be the start of a delimiter line
    # The first delimiter may open the body without a CRLF before it.
    buf = b"\r\n"
    state = "preamble"  # preamble, after_delimiter, headers, body, done
    index = 0
    current: _TempPart | None = None
    headers: dict[str, str] = {}
    reported = False  # the current part's error has been yielded
    source = iter(chunks)
    eof = False
    try:
        while True:
            progressed = True
            while progressed and state != "done":
                progressed = False
                stats.peak_buffer = max(stats.peak_buffer, len(buf))
                if state == "preamble":
                    at = buf.find(delimiter)
                    if at < 0:
                        buf = buf[-keep:] if len(buf) > keep else buf
                    else:
                        buf = buf[at + len(delimiter) :]
                        state = "after_delimiter"
                        progressed = True
                elif state == "after_delimiter":
                    if buf.startswith(b"--"):
                        state = "done"  # the closing delimiter: the rest is the epilogue
                        break
                    line_end = buf.find(b"\r\n")
                    if line_end >= 0:  # transport padding (whitespace) up to the CRLF
                        buf = buf[line_end + 2 :]
                        index += 1
                        reported = False
                        state = "headers"
                        progressed = True
                    elif len(buf) > MAX_HEADER_BYTES:
                        raise _Malformed("the delimiter line is too long")
                elif state == "headers":
                    if buf.startswith(b"\r\n"):
                        end, skip = 0, 2
                    else:
                        end = buf.find(b"\r\n\r\n")
                        skip = 4
                    # A delimiter before the blank line: this part has content but no
                    # headers' end. Read on, the next part's headers would end it, and its
                    # content would be taken for this part's, this part silently lost.
                    next_part = buf.find(delimiter)
                    if next_part >= 0 and (end < 0 or next_part < end):
                        raise _Malformed(
                            f"part {index} has no blank line between its headers and its "
                            "content (RFC 2046 5.1.1)"
                        )
                    if end > MAX_HEADER_BYTES or (end < 0 and len(buf) > MAX_HEADER_BYTES):
                        raise _Malformed(f"the headers of part {index} are too long")
                    if end >= 0:
                        headers = _parse_headers(buf[:end])
                        buf = buf[end + skip :]
                        try:
                            current = _TempPart(directory)
                        except OSError as exc:
                            current = None
                            reported = True
                            yield Part.spool_failure(index, headers, exc)
                        state = "body"
                        progressed = True
                elif state == "body":
                    at = buf.find(delimiter)
                    if at >= 0:
                        data, buf = buf[:at], buf[at + len(delimiter) :]
                        state = "after_delimiter"
                        progressed = True
                    else:
                        cut = max(0, len(buf) - keep)
                        data, buf = buf[:cut], buf[cut:]
                    if current is not None:
                        writing = current
                        finished: Path | None = None
                        try:
                            writing.write(data)
                            if state == "after_delimiter":
                                finished = writing.close()
                        except OSError as exc:
                            writing.discard()
                            current = None
                            reported = True
                            yield Part.spool_failure(index, headers, exc)
                        else:
                            if finished is not None:
                                current = None
                                stats.parts += 1
                                yield Part(index, headers, path=finished)
                    elif state == "after_delimiter":
                        current = None  # its error was yielded when it began
            if state == "done" or eof:
                break
            try:
                data = next(source)
            except StopIteration:
                eof = True
                continue
            buf += data
            stats.peak_buffer = max(stats.peak_buffer, len(buf))
        if state in ("headers", "body") and eof:
            raise _Malformed(f"the body ends inside part {index} (no closing delimiter)")
    except _Malformed as exc:
        if current is not None:
            current.discard()
            current = None
        if state in ("headers", "body") and not reported:
            yield Part(index, headers, error=str(exc), malformed=True)
    finally:
        if current is not None:  # the consumer stopped early, or an unexpected error
            current.discard()


class _Malformed(Exception):
    pass


# ---------------------------------------------------------------------- response


@dataclass(frozen=True)
class Stored:
    sop_class_uid: str
    sop_instance_uid: str
    retrieve_url: str


@dataclass(frozen=True)
class Failed:
    sop_class_uid: str
    sop_instance_uid: str
    reason: int  # the DIMSE status (FailureReason, 0008,1197)


def response_dataset(
    *, study_url: str, stored: list[Stored], failed: list[Failed]
) -> dict[str, Any]:
    """The store response (PS3.18 Table 10.5.3-1) as DICOM JSON: RetrieveURL of the study
    (when there is one), ReferencedSOPSequence and FailedSOPSequence."""
    ds = Dataset()
    if study_url:
        ds.RetrieveURL = study_url
    if stored:
        items = []
        for s in stored:
            item = Dataset()
            item.ReferencedSOPClassUID = s.sop_class_uid
            item.ReferencedSOPInstanceUID = s.sop_instance_uid
            item.RetrieveURL = s.retrieve_url
            items.append(item)
        ds.ReferencedSOPSequence = Sequence(items)
    if failed:
        items = []
        for f in failed:
            item = Dataset()
            if f.sop_class_uid:
                item.ReferencedSOPClassUID = f.sop_class_uid
            if f.sop_instance_uid:
                item.ReferencedSOPInstanceUID = f.sop_instance_uid
            item.FailureReason = f.reason
            items.append(item)
        ds.FailedSOPSequence = Sequence(items)
    return ds.to_json_dict()
