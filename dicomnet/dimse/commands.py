"""DIMSE command sets and P-DATA-TF PDUs encoded by hand, for the two answers sent most often:
a C-STORE's response (``dicomnet.net.lean_store``) and a C-FIND's pending responses
(``dicomnet.net.reactor``). pynetdicom builds each from a primitive, a message and a
pydicom Dataset, ~0.3 ms of CPU apiece; these are a few struct calls. Each is tested byte
for byte against pynetdicom's encoding (dicomnet/dimse/tests/test_commands.py).
"""

from __future__ import annotations

import struct

C_STORE_RSP = 0x8001
C_FIND_RSP = 0x8020
NO_DATA_SET = 0x0101
DATA_SET = 0x0001
COMMAND, LAST = 0x01, 0x02  # message control header bits (PS3.8 E.2)


def even(value: bytes, pad: bytes) -> bytes:
    """A value padded to even length (PS3.5 7.1.1): NUL for UI, a space for text."""
    return value + pad if len(value) % 2 else value


def uid(value: str) -> bytes:
    """A UI value, padded to even length with NUL (PS3.5 6.2)."""
    return even(value.encode("ascii"), b"\0")


def us(value: int) -> bytes:
    return struct.pack("<H", value)


def command_set(elements: list[tuple[int, bytes]]) -> bytes:
    """Group 0000 in Implicit VR Little Endian (PS3.7 E.1), its group length first."""
    body = b"".join(struct.pack("<HHL", 0x0000, tag, len(value)) + value for tag, value in elements)
    return struct.pack("<HHLL", 0x0000, 0x0000, 4, len(body)) + body


def store_response(
    *, message_id: int, sop_class_uid: str, sop_instance_uid: str, status: int
) -> bytes:
    """A C-STORE-RSP (PS3.7 9.3.1.2)."""
    return command_set(
        [
            (0x0002, uid(sop_class_uid)),
            (0x0100, us(C_STORE_RSP)),
            (0x0120, us(message_id)),
            (0x0800, us(NO_DATA_SET)),
            (0x0900, us(status)),
            (0x1000, uid(sop_instance_uid)),
        ]
    )


def find_response(*, message_id: int, sop_class_uid: str, status: int) -> bytes:
    """A C-FIND-RSP that carries an identifier (a pending one, PS3.7 9.3.2.2)."""
    return command_set(
        [
            (0x0002, uid(sop_class_uid)),
            (0x0100, us(C_FIND_RSP)),
            (0x0120, us(message_id)),
            (0x0800, us(DATA_SET)),
            (0x0900, us(status)),
        ]
    )


def pdv(context_id: int, control: int, fragment: bytes) -> bytes:
    return struct.pack(">LBB", len(fragment) + 2, context_id, control) + fragment


def p_data_tf(*items: bytes) -> bytes:
    """A P-DATA-TF PDU of PDV items (PS3.8 9.3.5)."""
    body = b"".join(items)
    return struct.pack(">BxL", 0x04, len(body)) + body


def message_pdus(context_id: int, command: bytes, data_set: bytes, max_pdu: int) -> bytes:
    """A command and its data set as P-DATA-TF PDUs within the peer's ``max_pdu`` (0: no
    limit): both in one PDU when they fit, else the command, then the data set in
    fragments of at most ``max_pdu - 6`` bytes, one to a PDU, as pynetdicom sends them."""
    command_item = pdv(context_id, COMMAND | LAST, command)
    if not max_pdu or len(command_item) + len(data_set) + 6 <= max_pdu:
        return p_data_tf(command_item, pdv(context_id, LAST, data_set))
    size = max_pdu - 6
    pieces = [data_set[i : i + size] for i in range(0, len(data_set), size)] or [b""]
    pdus = [p_data_tf(command_item)]
    for i, piece in enumerate(pieces):
        pdus.append(p_data_tf(pdv(context_id, LAST if i == len(pieces) - 1 else 0, piece)))
    return b"".join(pdus)
