"""A scripted raw-socket DICOM peer, in the style of pynetdicom's ``tests/parrot.py``.

The listener's robustness tests need a peer that misbehaves on purpose (stops mid-PDU,
declares absurd lengths), which no real toolkit will do, so PDUs are built by hand here
from PS3.8 section 9.3.
"""

from __future__ import annotations

import socket
import struct
import time

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_VR_LE = "1.2.840.10008.1.2"

A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _uid(value: str) -> bytes:
    return value.encode("ascii")


def associate_rq(
    *,
    called_ae: str = "NEXREL-CRM",
    calling_ae: str = "CARESTREAM",
    abstract_syntax: str = VERIFICATION,
    transfer_syntax: str = IMPLICIT_VR_LE,
    max_pdu: int = 16384,
) -> bytes:
    """An A-ASSOCIATE-RQ PDU proposing one presentation context (ID 1)."""
    context = struct.pack(">BBBB", 1, 0, 0, 0)
    context += _item(0x30, _uid(abstract_syntax)) + _item(0x40, _uid(transfer_syntax))
    user_info = _item(0x51, struct.pack(">I", max_pdu))
    variable = (
        _item(0x10, _uid(APPLICATION_CONTEXT)) + _item(0x20, context) + _item(0x50, user_info)
    )
    fixed = struct.pack(">HH", 1, 0)
    fixed += called_ae.ljust(16).encode("ascii") + calling_ae.ljust(16).encode("ascii")
    fixed += b"\x00" * 32
    body = fixed + variable
    return struct.pack(">BBI", A_ASSOCIATE_RQ, 0, len(body)) + body


def pdu_header(pdu_type: int, length: int) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, length)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    pdu_type, _, length = struct.unpack(">BBI", recv_exactly(sock, 6))
    return pdu_type, recv_exactly(sock, length)


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def associate(port: int, **kwargs) -> socket.socket:
    """Open a socket and complete association negotiation; fail unless accepted."""
    sock = connect(port)
    sock.sendall(associate_rq(**kwargs))
    pdu_type, body = read_pdu(sock)
    if pdu_type != A_ASSOCIATE_AC:
        sock.close()
        raise AssertionError(f"association not accepted: PDU type 0x{pdu_type:02X} {body!r}")
    return sock


def closed_by_peer_within(sock: socket.socket, timeout: float) -> float | None:
    """Seconds until the peer closed ``sock`` (EOF or reset), or None if it stayed open."""
    start = time.monotonic()
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(4096):
                return time.monotonic() - start
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - start
    except TimeoutError:
        return None
