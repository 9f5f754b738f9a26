"""The lean C-STORE path's File Meta against pydicom's, byte for byte, and its splitting of
P-DATA-TF PDUs (the path itself, on a running listener: tests/integration/test_lean_store.py;
its response: dicomnet/dimse/tests/test_commands.py)."""

from __future__ import annotations

import struct

import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom.dsutils import create_file_meta

from dicomnet.net import lean_store

INTRA_ORAL = "1.2.840.10008.5.1.4.1.1.1.3"
CT = "1.2.840.10008.5.1.4.1.1.2"
ODD = "1.2.826.0.1.3680043.8.498.45217397432054550102192254069735417786"  # 64: even
EVEN = "1.2.826.0.1.3680043.8.498.1"  # 27: odd, padded


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "syntax"),
    [
        (INTRA_ORAL, ODD, ExplicitVRLittleEndian),
        (CT, EVEN, ImplicitVRLittleEndian),
        (CT, ODD, JPEG2000Lossless),
    ],
)
def test_file_meta_is_what_pynetdicom_writes(sop_class, sop_instance, syntax):
    expected = DicomBytesIO()
    expected.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(
        expected,
        create_file_meta(
            sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=syntax
        ),
    )
    assert lean_store.file_meta(sop_class, sop_instance, syntax) == expected.getvalue()


def _item(context_id: int, control: int, data: bytes) -> bytes:
    return struct.pack(">LBB", len(data) + 2, context_id, control) + data


def test_pdv_items_split_a_pdu_in_order():
    body = _item(1, 0x01, b"ab") + _item(1, 0x03, b"cd") + _item(3, 0x00, b"e" * 999)
    assert [(c, h, bytes(d)) for c, h, d in lean_store.pdv_items(body)] == [
        (1, 0x01, b"ab"),
        (1, 0x03, b"cd"),
        (3, 0x00, b"e" * 999),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",  # no item
        struct.pack(">L", 100) + b"\x01\x03" + b"\0" * 4,  # longer than its PDU
        struct.pack(">L", 1) + b"\x01",  # too short for its two header bytes
        _item(1, 0x03, b"ab") + b"\0\0\0",  # bytes left over
    ],
)
def test_pdv_items_that_do_not_tile_the_pdu_are_left_to_pynetdicom(body):
    assert lean_store.pdv_items(body) is None
