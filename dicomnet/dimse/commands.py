"""DIMSE command sets and P-DATA-TF PDUs encoded by hand, for the two answers sent most often:
a C-STORE's response (``dicomnet.net.lean_store``) and a C-FIND's pending responses
(``dicomnet.net.reactor``). pynetdicom builds each from a primitive, a message and a
pydicom Dataset, ~0.3 ms of CPU apiece; these are a few struct calls. Each is tested byte
for byte against pynetdicom's encoding (dicomnet/dimse/tests/test_commands.py).

And the one request read most often, a C-STORE-RQ (``read_command``): pydicom's decoding
of its command set cost ~0.4 ms per object; a command set is always group 0000 in
Implicit VR Little Endian (PS3.7 6.3.1), so its elements are a few struct calls too. What
it does not read exactly so is left to pydicom (tested against its decoding).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Command:
    """The elements of a request's command set that decide where it goes (PS3.7 E.1)."""

    command_field: int | None
    message_id: int | None
    data_set_type: int | None
    affected_sop_class_uid: str
    affected_sop_instance_uid: str

    @property
    def has_data_set(self) -> bool:
        return self.data_set_type is not None and self.data_set_type != NO_DATA_SET


_US_ELEMENTS = {0x0100: "command_field", 0x0110: "message_id", 0x0800: "data_set_type"}
_UI_ELEMENTS = {0x0002: "affected_sop_class_uid", 0x1000: "affected_sop_instance_uid"}


def read_command(data: bytes) -> Command | None:
    """A command set's routing elements, or ``None`` when its bytes are not group 0000
    elements that tile it exactly, each US two bytes long (pydicom then decodes it)."""
    numbers: dict[str, int] = {}
    uids: dict[str, str] = {}
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < 8:
            return None
        group, element, length = struct.unpack_from("<HHL", data, offset)
        offset += 8
        if group != 0x0000 or length > end - offset:
            return None
        if element in _US_ELEMENTS:
            if length != 2:
                return None
            numbers[_US_ELEMENTS[element]] = struct.unpack_from("<H", data, offset)[0]
        elif element in _UI_ELEMENTS:
            # As pydicom's UI: its default character set, trailing NUL and spaces dropped.
            raw = data[offset : offset + length]
            uids[_UI_ELEMENTS[element]] = raw.decode("iso8859").rstrip("\0 ")
        offset += length
    return Command(
        command_field=numbers.get("command_field"),
        message_id=numbers.get("message_id"),
        data_set_type=numbers.get("data_set_type"),
        affected_sop_class_uid=uids.get("affected_sop_class_uid", ""),
        affected_sop_instance_uid=uids.get("affected_sop_instance_uid", ""),
    )
