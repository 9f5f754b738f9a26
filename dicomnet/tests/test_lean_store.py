"""The lean C-STORE path's encoders against pydicom's and pynetdicom's, byte for byte
(the path itself, on a running listener: tests/integration/test_lean_store.py)."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta, decode, encode
from pynetdicom.pdu import P_DATA_TF

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


@pytest.mark.parametrize("answer", [0x0000, 0xA700, 0xC000, 0xB007])
@pytest.mark.parametrize("sop_instance", [ODD, EVEN])
def test_store_response_is_what_pynetdicom_encodes(answer, sop_instance):
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 513
    rsp.AffectedSOPClassUID, rsp.AffectedSOPInstanceUID = CT, sop_instance
    rsp.Status = answer
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    expected = encode(message.command_set, True, True)
    assert (
        lean_store.store_response(
            message_id=513, sop_class_uid=CT, sop_instance_uid=sop_instance, status=answer
        )
        == expected
    )


def test_the_response_pdu_decodes_as_one_last_command_fragment():
    command = lean_store.store_response(
        message_id=7, sop_class_uid=CT, sop_instance_uid=ODD, status=0
    )
    pdu = P_DATA_TF()
    pdu.decode(lean_store.p_data_tf(3, command))
    [(context_id, data)] = [
        (item.presentation_context_id, item.presentation_data_value)
        for item in pdu.presentation_data_value_items
    ]
    assert (context_id, data[0], data[1:]) == (3, 0x03, command)
    decoded = decode(BytesIO(data[1:]), True, True)
    assert (decoded.CommandField, decoded.MessageIDBeingRespondedTo, decoded.Status) == (
        0x8001,
        7,
        0,
    )


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
