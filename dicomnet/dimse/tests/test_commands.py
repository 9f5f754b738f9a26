"""Hand-encoded command sets and PDUs against pynetdicom's own encoding, byte for byte."""

from __future__ import annotations

from io import BytesIO

import pytest
from pynetdicom.dimse_messages import C_ECHO_RQ, C_FIND_RSP, C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_STORE
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import P_DATA_TF

from dicomnet.dimse import commands

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
EVEN = "1.2.826.0.1.3680043.8.498.45217397432054550102192254069735417786"  # 64 characters
ODD = "1.2.826.0.1.3680043.8.498.1"  # 27: padded


def _pynetdicom(message_class, primitive) -> bytes:
    message = message_class()
    message.primitive_to_message(primitive)
    return encode(message.command_set, True, True)


@pytest.mark.parametrize("answer", [0x0000, 0xA700, 0xC000, 0xB007])
@pytest.mark.parametrize("sop_instance", [EVEN, ODD])
def test_store_response_is_what_pynetdicom_encodes(answer, sop_instance):
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 513
    rsp.AffectedSOPClassUID, rsp.AffectedSOPInstanceUID = CT, sop_instance
    rsp.Status = answer
    ours = commands.store_response(
        message_id=513, sop_class_uid=CT, sop_instance_uid=sop_instance, status=answer
    )
    assert ours == _pynetdicom(C_STORE_RSP, rsp)


@pytest.mark.parametrize("answer", [0xFF00, 0xFF01])
@pytest.mark.parametrize("sop_class", [STUDY_FIND, "1.2.840.10008.5.1.4.31"])
def test_pending_find_response_is_what_pynetdicom_encodes(answer, sop_class):
    rsp = C_FIND()
    rsp.MessageID = rsp.MessageIDBeingRespondedTo = 65535
    rsp.AffectedSOPClassUID, rsp.Status = sop_class, answer
    rsp.Identifier = BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")
    ours = commands.find_response(message_id=65535, sop_class_uid=sop_class, status=answer)
    assert ours == _pynetdicom(C_FIND_RSP, rsp)


def _decoded(stream: bytes) -> list[tuple[int, int, bytes]]:
    """Every PDV of a run of P-DATA-TF PDUs, with pynetdicom's decoder; PDU sizes checked."""
    items, offset = [], 0
    while offset < len(stream):
        length = int.from_bytes(stream[offset + 2 : offset + 6], "big")
        pdu = P_DATA_TF()
        pdu.decode(stream[offset : offset + 6 + length])
        items += [
            (i.presentation_context_id, i.presentation_data_value[0], i.presentation_data_value[1:])
            for i in pdu.presentation_data_value_items
        ]
        offset += 6 + length
    return items


@pytest.mark.parametrize("max_pdu", [0, 16384, 100])
def test_a_message_is_split_within_the_peers_maximum_pdu(max_pdu):
    command = commands.find_response(message_id=3, sop_class_uid=STUDY_FIND, status=0xFF00)
    identifier = bytes(range(256)) * 4
    stream = commands.message_pdus(5, command, identifier, max_pdu)
    items = _decoded(stream)
    assert items[0] == (5, 0x03, command)
    assert b"".join(f for _, _, f in items[1:]) == identifier
    assert [h for _, h, _ in items[1:]] == [0x00] * (len(items) - 2) + [0x02]
    if max_pdu:
        offset = 0
        while offset < len(stream):
            length = int.from_bytes(stream[offset + 2 : offset + 6], "big")
            assert length <= max_pdu
            offset += 6 + length
    assert decode(BytesIO(items[0][2]), True, True).Status == 0xFF00


def _store_request(sop_instance: str, **extra) -> bytes:
    rq = C_STORE()
    rq.MessageID, rq.Priority = 7, 2
    rq.AffectedSOPClassUID, rq.AffectedSOPInstanceUID = CT, sop_instance
    for name, value in extra.items():
        setattr(rq, name, value)
    message = C_STORE_RQ()
    message.primitive_to_message(rq)
    message.command_set.CommandDataSetType = 0x0001  # a data set follows, as sent
    return encode(message.command_set, True, True)


def _echo() -> C_ECHO:
    rq = C_ECHO()
    rq.MessageID, rq.AffectedSOPClassUID = 1, "1.2.840.10008.1.1"
    return rq


def _as_pydicom_reads_it(raw: bytes) -> commands.Command:
    ds = decode(BytesIO(raw), True, True)
    return commands.Command(
        command_field=ds.CommandField,
        message_id=ds.get("MessageID"),
        data_set_type=ds.CommandDataSetType,
        affected_sop_class_uid=str(ds.get("AffectedSOPClassUID", "")),
        affected_sop_instance_uid=str(ds.get("AffectedSOPInstanceUID", "")),
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_store_request(EVEN), id="c-store, 64-character UID"),
        pytest.param(_store_request(ODD), id="c-store, padded UID"),
        pytest.param(
            _store_request(
                ODD, MoveOriginatorApplicationEntityTitle="ORTHANC", MoveOriginatorMessageID=3
            ),
            id="c-store from a c-move",
        ),
        pytest.param(_pynetdicom(C_ECHO_RQ, _echo()), id="c-echo"),
    ],
)
def test_a_request_is_read_as_pydicom_decodes_it(raw):
    ours = commands.read_command(raw)
    assert ours == _as_pydicom_reads_it(raw)
    assert ours.has_data_set == (ours.command_field == 0x0001)


def test_what_it_cannot_read_exactly_is_left_to_pydicom():
    raw = _store_request(ODD)
    assert commands.read_command(raw[:-3]) is None  # cut inside the last element
    assert commands.read_command(raw + b"\x08\x00") is None  # a stray tail
    not_group_0 = raw + b"\x08\x00\x18\x00\x02\x00\x00\x001\x00"
    assert commands.read_command(not_group_0) is None
    # MessageID (0000,0110) declared 4 bytes long: not a US
    wide_us = raw.replace(
        b"\x00\x00\x10\x01\x02\x00\x00\x00\x07\x00",
        b"\x00\x00\x10\x01\x04\x00\x00\x00\x07\x00\x00\x00",
    )
    assert wide_us != raw and commands.read_command(wide_us) is None
    assert commands.read_command(b"") == commands.Command(None, None, None, "", "")
