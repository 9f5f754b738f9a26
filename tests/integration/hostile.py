"""Hostile peers of the DICOM listener (issue 10 §6), shared by
tests/integration/test_hostile_input.py, which asserts what each peer gets, and
bench/bench_hostile.py, which measures the listener meanwhile. No Django here: the bench
imports this module before it has a database.

- ``MALFORMED``: PDUs no toolkit sends (unknown types, lengths past the end, PDUs out of
  turn), before or inside an association; ``HTTP_REQUEST``, ``client_hello()``: another
  protocol's first bytes;
- ``answer(sock)``: what the listener did with a connection: the PDUs it sent, and whether
  and when it closed it;
- ``trickle``: a slowloris, one byte every ``interval`` seconds;
- ``connect_many``, ``associate_many``: floods of idle connections and of requests;
- objects for C-STORE, written as files (the meta names the command's UIDs): ``bad_vr``,
  ``header_past_end``, ``pixels_past_end``, ``nested``, ``rle_bomb``, ``deflate_bomb``,
  ``with_uids``; ``store`` sends a file's bytes as they are (pynetdicom), ``storescu`` with
  DCMTK;
- ``echo``: the legitimate association made meanwhile;
- ``Usage``: the listener's peak RSS (VmHWM, reset first) and thread count while a case runs.
"""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    DigitalIntraOralXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)
from pynetdicom import AE, _config
from pynetdicom.sop_class import Verification

from dicomnet.dimse.pdu import PDU_NAMES
from tests.integration import rawpeer

CALLED_AE, CALLING_AE = "NEXREL-CRM", "CARESTREAM"  # the demo practice and one of its devices

# ---------------------------------------------------------------------- PDUs


def _associate_rq_item_past_end() -> bytes:
    """An A-ASSOCIATE-RQ whose Application Context item declares 5000 bytes, in 161."""
    rq = bytearray(rawpeer.associate_rq())
    rq[6 + 68 + 2 : 6 + 68 + 4] = struct.pack(">H", 5000)
    return bytes(rq)


def _pdv_longer_than_its_pdu() -> bytes:
    """A P-DATA-TF of 10 bytes whose one PDV item declares 100."""
    pdv = struct.pack(">I", 100) + b"\x01\x03" + b"\x00" * 4
    return rawpeer.pdu_header(rawpeer.P_DATA_TF, len(pdv)) + pdv


@dataclass(frozen=True)
class Malformed:
    inside: bool  # sent inside an established association (else as the first PDU)
    data: bytes
    logged: str  # what the listener logs for it, once (pynetdicom's words, or ours)
    aborted: bool = True  # answered with an A-ABORT (else only closed)


MALFORMED: dict[str, Malformed] = {
    "unknown PDU type 0x08": Malformed(
        False, rawpeer.pdu_header(0x08, 10) + b"\x00" * 10, "Unknown PDU type received '0x08'"
    ),
    "unknown PDU type 0xFF": Malformed(
        False, rawpeer.pdu_header(0xFF, 4) + b"\x00" * 4, "Unknown PDU type received '0xFF'"
    ),
    "A-ASSOCIATE-RQ of noise": Malformed(
        False,
        rawpeer.pdu_header(0x01, 200) + bytes(range(200)),
        "Unable to decode the received PDU data",
    ),
    "A-ASSOCIATE-RQ item past its end": Malformed(
        False, _associate_rq_item_past_end(), "Unable to decode the received PDU data"
    ),
    "A-ASSOCIATE-RQ declaring 4 GiB": Malformed(
        False,
        rawpeer.pdu_header(0x01, 0xFFFFFFFF),
        "declared a PDU of 4294967295 bytes, beyond our maximum",
        aborted=False,  # refused before reading it: closed
    ),
    "A-RELEASE-RQ before any request": Malformed(
        False,
        rawpeer.pdu_header(0x05, 4) + b"\x00" * 4,
        "sent an A-RELEASE-RQ before any A-ASSOCIATE-RQ",
    ),
    "P-DATA-TF before any request": Malformed(
        False,
        rawpeer.pdu_header(0x04, 10) + b"\x00" * 10,
        "sent a P-DATA-TF before any A-ASSOCIATE-RQ",
    ),
    "PDV longer than its PDU": Malformed(
        True, _pdv_longer_than_its_pdu(), "Unable to decode the received PDU data"
    ),
    "second A-ASSOCIATE-RQ": Malformed(
        True, rawpeer.associate_rq(), "sent an A-ASSOCIATE-RQ inside an association: aborting"
    ),
    "unknown PDU type 0x42 inside": Malformed(
        True, rawpeer.pdu_header(0x42, 4) + b"\x00" * 4, "Unknown PDU type received '0x42'"
    ),
}

HTTP_REQUEST = (
    b"GET /dicomweb/studies HTTP/1.1\r\nHost: nexrel.local:4242\r\n"
    b"User-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"
)


def client_hello(server_name: str = "nexrel.local") -> bytes:
    """The first flight of a real TLS client (Python's ssl, as a TLS device would send)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


# ---------------------------------------------------------------------- what the peer got


@dataclass
class Answer:
    """What the listener did with one connection."""

    pdus: list[tuple[int, bytes]] = field(default_factory=list)  # (type, body), in order
    closed: bool = False  # EOF or reset before the timeout
    seconds: float = 0.0  # from ``since`` until closed (or the timeout)

    @property
    def types(self) -> list[str]:
        return [PDU_NAMES.get(t, f"0x{t:02X}") for t, _ in self.pdus]

    def __str__(self) -> str:
        parts = []
        for pdu_type, body in self.pdus:
            name = PDU_NAMES.get(pdu_type, f"0x{pdu_type:02X}")
            if pdu_type == 0x07 and len(body) >= 4:  # source, reason
                name += f" (source {body[2]}, reason {body[3]})"
            elif pdu_type == 0x03 and len(body) >= 4:  # result, source, reason
                name += f" ({body[1]}, {body[2]}, {body[3]})"
            parts.append(name)
        end = f"closed after {self.seconds:.1f} s" if self.closed else "still open"
        return ", ".join([*parts, end])


def answer(sock: socket.socket, *, since: float, timeout: float = 10.0) -> Answer:
    """Read what the listener sends until it closes ``sock`` or ``timeout`` passes."""
    got = Answer()
    data = b""
    deadline = since + timeout
    try:
        while True:  # one read at least, even past the deadline: what has arrived counts
            sock.settimeout(max(deadline - time.monotonic(), 0.05))
            chunk = sock.recv(65536)
            if not chunk:
                got.closed = True
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        got.closed = True
    except TimeoutError:
        pass
    got.seconds = time.monotonic() - since
    while len(data) >= 6:
        pdu_type, _, length = struct.unpack(">BBI", data[:6])
        got.pdus.append((pdu_type, data[6 : 6 + length]))
        data = data[6 + length :]
    return got


def connect(port: int, *, source: str | None = None, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    )


def send_hostile(port: int, data: bytes, *, inside: bool) -> tuple[socket.socket, float]:
    """Connect (and associate first when ``inside``), send ``data``; the socket and when."""
    sock = rawpeer.associate(port) if inside else connect(port)
    sock.sendall(data)
    return sock, time.monotonic()


class Trickle(threading.Thread):
    """Sends ``data`` one byte every ``interval`` seconds (a slowloris) until done, stopped
    or refused; ``interval=None`` sends nothing (a silent connection)."""

    def __init__(self, sock: socket.socket, data: bytes, interval: float | None) -> None:
        super().__init__(daemon=True)
        self.sock, self.data, self.interval = sock, data, interval
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        if self.interval is None:
            return
        for byte in self.data:
            if self.stop.is_set():
                return
            try:
                self.sock.send(bytes([byte]))
            except OSError:
                return
            self.sent += 1
            self.stop.wait(self.interval)


def connect_many(port: int, count: int, *, source: str) -> list[socket.socket | None]:
    """``count`` idle connections from ``source``; None for each the kernel refused."""
    sockets: list[socket.socket | None] = []
    for _ in range(count):
        try:
            sockets.append(connect(port, source=source, timeout=5))
        except OSError:
            sockets.append(None)
    return sockets


def associate_many(port: int, sources: list[str]) -> list[tuple[socket.socket | None, str]]:
    """An A-ASSOCIATE-RQ from each source address at once; each socket and what it got
    ("A-ASSOCIATE-AC", "A-ASSOCIATE-RJ", "closed", or "refused" without a socket)."""
    results: list[tuple[socket.socket | None, str] | None] = [None] * len(sources)

    def one(i: int, source: str) -> None:
        try:
            sock = connect(port, source=source, timeout=10)
        except OSError:
            results[i] = (None, "refused")
            return
        try:
            sock.sendall(rawpeer.associate_rq())
            pdu_type, _ = rawpeer.read_pdu(sock)
            results[i] = (sock, PDU_NAMES.get(pdu_type, hex(pdu_type)))
        except (ConnectionError, OSError):
            results[i] = (sock, "closed")

    threads = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(sources)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return [r if r is not None else (None, "no answer") for r in results]


# ---------------------------------------------------------------------- legitimate peers


def echo(port: int, *, source: str | None = None) -> bool:
    """A C-ECHO from the demo's CARESTREAM (from ``source``, when given): True on Success."""
    ae = AE(ae_title=CALLING_AE)
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate(
        "127.0.0.1", port, ae_title=CALLED_AE, bind_address=(source or "127.0.0.1", 0)
    )
    if not assoc.is_established:
        return False
    try:
        rsp = assoc.send_c_echo()
        return bool(rsp and rsp.get("Status") == 0x0000)
    finally:
        assoc.release()


STORE_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    DeflatedExplicitVRLittleEndian,
)


@contextmanager
def store_association(port: int) -> Iterator[AE]:
    """An association proposing the intra-oral class in each syntax the files below use;
    file bytes are sent as they are (``STORE_SEND_CHUNKED_DATASET``), never re-encoded."""
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title=CALLING_AE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    for syntax in STORE_SYNTAXES:
        ae.add_requested_context(DigitalIntraOralXRayImageStorageForPresentation, syntax)
    assoc = ae.associate("127.0.0.1", port, ae_title=CALLED_AE)
    try:
        if not assoc.is_established:
            raise AssertionError("the listener refused the C-STORE association")
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        _config.STORE_SEND_CHUNKED_DATASET = previous


def store(assoc, path: Path) -> int | None:
    """C-STORE of the file's data set bytes; the status, or None without a response."""
    rsp = assoc.send_c_store(path)
    return int(rsp.Status) if rsp and "Status" in rsp else None


def storescu(port: int, path: Path) -> str:
    """DCMTK storescu sending ``path``: the status line of its response."""
    result = subprocess.run(
        ["storescu", "-v", "-aet", CALLING_AE, "-aec", CALLED_AE, "127.0.0.1", str(port), path],
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = [line for line in result.stderr.splitlines() if "Store Response" in line]
    return lines[-1] if lines else result.stderr.strip()[-200:]


# ---------------------------------------------------------------------- crafted objects


def image(*, size: int = 32, sop_uid: str | None = None) -> Dataset:
    """A small 16-bit intra-oral image (a gradient), with fresh UIDs."""
    ds = Dataset()
    ds.SOPClassUID = DigitalIntraOralXRayImageStorageForPresentation
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName = "1001", "Côté^Zoé"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyDate, ds.Modality, ds.InstanceNumber = "20240115", "IO", 1
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.linspace(0, 4095, size * size).astype("<u2").tobytes()
    return ds


def _meta(ds: Dataset, syntax: str, *, command_sop_uid: str | None = None) -> bytes:
    """Preamble, "DICM" and the file meta: what pynetdicom puts in the C-STORE command."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = command_sop_uid or ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    out = DicomBytesIO()
    write_file_meta_info(out, meta)  # by hand: pydicom's save_as would check the UIDs
    return b"\0" * 128 + b"DICM" + out.getvalue()


def _body(ds: Dataset) -> bytes:
    """The data set in Explicit VR Little Endian."""
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, ds)
    return out.getvalue()


def explicit_file(ds: Dataset, path: Path, *, command_sop_uid: str | None = None) -> Path:
    path.write_bytes(_meta(ds, ExplicitVRLittleEndian, command_sop_uid=command_sop_uid) + _body(ds))
    return path


def _patched(path: Path, ds: Dataset, old: bytes, new: bytes) -> Path:
    data = _meta(ds, ExplicitVRLittleEndian) + _body(ds)
    assert data.count(old) == 1, old
    path.write_bytes(data.replace(old, new))
    return path


def bad_vr(path: Path) -> Path:
    """Patient Name with the VR "ZZ", which no edition of the standard defines."""
    ds = image()
    return _patched(path, ds, b"\x10\x00\x10\x00PN", b"\x10\x00\x10\x00ZZ")


def header_past_end(path: Path) -> Path:
    """The file ends inside a header element: Study Description declares 65535 bytes,
    4 follow."""
    ds = image()
    ds.StudyDescription = "PANO"
    data = _meta(ds, ExplicitVRLittleEndian) + _body(ds)
    at = data.index(b"\x08\x00\x30\x10LO")  # (0008,1030) LO
    data = data[: at + 6] + struct.pack("<H", 0xFFFF) + b"PANO"  # then the file ends
    path.write_bytes(data)
    return path


def pixels_past_end(path: Path) -> Path:
    """Pixel Data declaring 100 MB; the file holds 2 KB of it."""
    ds = image()
    data = _meta(ds, ExplicitVRLittleEndian) + _body(ds)
    at = data.index(b"\xe0\x7f\x10\x00OW\x00\x00")
    path.write_bytes(data[: at + 8] + struct.pack("<I", 100_000_000) + data[at + 12 :])
    return path


def nested(path: Path, depth: int) -> Path:
    """Content Sequences nested ``depth`` deep (undefined lengths), before the pixels."""
    ds = image()
    data = _meta(ds, ExplicitVRLittleEndian) + _body(ds)
    at = data.index(b"\xe0\x7f\x10\x00")
    opening = b"\x40\x00\x30\xa7SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    closing = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    path.write_bytes(data[:at] + opening * depth + closing * depth + data[at:])
    return path


def rle_bomb(path: Path) -> Path:
    """RLE Lossless, 65535 x 65535 16-bit pixels (8 GiB decoded) in a 100-byte fragment."""
    ds = image()
    ds.Rows = ds.Columns = 65535
    ds.BitsStored, ds.HighBit = 16, 15
    segment = b"\x81\x00" * 16  # each: 128 zero bytes
    header = struct.pack("<16I", 2, 64, 64 + len(segment), *[0] * 13)
    ds.PixelData = encapsulate([header + segment + segment])
    ds["PixelData"].VR = "OB"
    path.write_bytes(_meta(ds, RLELossless) + _body(ds))
    return path


def deflate_bomb(path: Path, *, gib: int = 2) -> Path:
    """Deflated Explicit VR Little Endian whose data set inflates to ``gib`` GiB of pixel
    zeros (32768 x 32768 x 2 bytes for 2): about 2 MB on the wire.

    Deflate blocks ended by a sync flush are byte-aligned and, past the first, only refer
    back to zeros: one block of 16 MiB of zeros, repeated, is a valid stream.
    """
    ds = image()
    del ds.PixelData
    ds.Rows = ds.Columns = int((gib * 2**29) ** 0.5)
    ds.BitsStored, ds.HighBit = 16, 15
    pixels = ds.Rows * ds.Columns * 2
    head = _body(ds) + b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", pixels)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = [deflater.compress(head) + deflater.flush(zlib.Z_SYNC_FLUSH)]
    block = 16 * 1024 * 1024
    # The first block of zeros may refer back into the header; the next only to zeros.
    stream.append(deflater.compress(b"\0" * block) + deflater.flush(zlib.Z_SYNC_FLUSH))
    zeros = deflater.compress(b"\0" * block) + deflater.flush(zlib.Z_SYNC_FLUSH)
    stream.append(zeros * (pixels // block - 1))
    stream.append(deflater.flush())
    path.write_bytes(_meta(ds, DeflatedExplicitVRLittleEndian) + b"".join(stream))
    return path


def with_uids(path: Path, *, sop_uid: str, command_sop_uid: str | None = None) -> Path:
    """A small image whose SOP Instance UID is ``sop_uid`` (and the command's, unless
    ``command_sop_uid`` is given), whatever it holds."""
    ds = image(sop_uid=sop_uid)
    return explicit_file(ds, path, command_sop_uid=command_sop_uid)


# ---------------------------------------------------------------------- the listener's usage


def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


class Usage:
    """The process's peak RSS and thread count while the ``with`` block runs.

    The peak RSS is the kernel's (VmHWM), reset on entry (``clear_refs``), so a spike
    between two samples is not missed; threads are sampled every 10 ms.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_mb = 0.0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            try:
                threads = int(proc_status(self.pid)["Threads"])
            except (OSError, KeyError, ValueError):
                return
            self.peak_threads = max(self.peak_threads, threads)
            if self._stop.wait(0.01):
                return

    def __enter__(self) -> Usage:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to VmRSS
        except OSError:
            pass  # an older kernel: VmHWM is then the peak since the start
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join()
        self.peak_rss_mb = int(proc_status(self.pid)["VmHWM"].split()[0]) / 1024
