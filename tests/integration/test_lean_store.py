"""The lean C-STORE path (dicomnet/net/lean_store.py) on a running listener: fragments cut
anywhere store the same bytes as pynetdicom's path does, other messages on the same
association are pynetdicom's, and P-DATA out of order is aborted with nothing left behind.
(Every other listener test runs on this path too: it is the default for storage-only
associations.)"""

from __future__ import annotations

import hashlib
import struct
from io import BytesIO
from pathlib import Path

import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta, decode, encode
from pynetdicom.sop_class import DigitalIntraOralXRayImageStorageForPresentation, Verification

from dicomnet.dimse import status
from dicomnet.models import DicomInstance
from tests.fixtures import wait_until
from tests.integration import hostile, rawpeer

pytestmark = pytest.mark.integration

INTRA_ORAL = str(DigitalIntraOralXRayImageStorageForPresentation)


def _item(context_id: int, control: int, data: bytes) -> bytes:
    return struct.pack(">LBB", len(data) + 2, context_id, control) + data


def _pdu(*items: bytes) -> bytes:
    body = b"".join(items)
    return rawpeer.pdu_header(rawpeer.P_DATA_TF, len(body)) + body


def _command(ds, message_id: int) -> bytes:
    request = C_STORE()
    request.MessageID, request.Priority = message_id, 2
    request.AffectedSOPClassUID, request.AffectedSOPInstanceUID = INTRA_ORAL, ds.SOPInstanceUID
    request.DataSet = BytesIO(b"\0")  # any: it only makes the command say a data set follows
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    return encode(message.command_set, True, True)


def _stored_bytes(ds) -> bytes:
    """The file a receiver keeps: the File Meta pynetdicom writes, then the data set."""
    meta = DicomBytesIO()
    meta.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(
        meta,
        create_file_meta(
            sop_class_uid=INTRA_ORAL,
            sop_instance_uid=ds.SOPInstanceUID,
            transfer_syntax=ExplicitVRLittleEndian,
        ),
    )
    return meta.getvalue() + hostile._body(ds)


def _associate(port: int):
    return rawpeer.associate(
        port, abstract_syntax=INTRA_ORAL, transfer_syntax=ExplicitVRLittleEndian
    )


def _response(sock) -> object:
    pdu_type, body = rawpeer.read_pdu(sock)
    assert pdu_type == rawpeer.P_DATA_TF, f"PDU type 0x{pdu_type:02X}"
    (length,) = struct.unpack(">L", body[:4])
    assert body[5] == 0x03 and length == len(body) - 4  # one last command fragment
    return decode(BytesIO(body[6:]), True, True)


def _spool_partials(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "spool" / "tmp").rglob("*") if p.is_file()]


@pytest.mark.parametrize("lean", ["true", "false"])
def test_fragments_cut_anywhere_store_the_same_bytes_on_both_paths(
    listener_factory, isolated_data, lean
):
    """The command in two PDUs; the data set in 997-byte fragments, three to a PDU."""
    _, port = listener_factory(env={"DICOM_LEAN_STORE": lean})
    ds = hostile.image(size=64)
    command, data = _command(ds, 41), hostile._body(ds)
    fragments = [data[i : i + 997] for i in range(0, len(data), 997)]
    last = len(fragments) - 1
    items = [_item(1, 0x02 if i == last else 0x00, f) for i, f in enumerate(fragments)]
    sock = _associate(port)
    try:
        sock.sendall(_pdu(_item(1, 0x01, command[:50])) + _pdu(_item(1, 0x03, command[50:])))
        for i in range(0, len(items), 3):
            sock.sendall(_pdu(*items[i : i + 3]))
        answer = _response(sock)
    finally:
        sock.close()
    assert (answer.Status, answer.MessageIDBeingRespondedTo, answer.AffectedSOPInstanceUID) == (
        status.SUCCESS,
        41,
        ds.SOPInstanceUID,
    )
    row = DicomInstance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    expected = _stored_bytes(ds)
    assert (row.sha256, row.size) == (hashlib.sha256(expected).hexdigest(), len(expected))
    assert Path(row.spool_path).read_bytes() == expected


def test_echo_and_store_on_one_association_are_each_answered(listener):
    _, port = listener
    ae = AE(ae_title=hostile.CALLING_AE)
    ae.add_requested_context(Verification)
    ae.add_requested_context(INTRA_ORAL, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title=hostile.CALLED_AE)
    assert assoc.is_established
    try:
        images = [hostile.image() for _ in range(3)]
        answers = [int(assoc.send_c_echo().Status)]
        for ds in images:
            ds.file_meta = create_file_meta(
                sop_class_uid=INTRA_ORAL,
                sop_instance_uid=ds.SOPInstanceUID,
                transfer_syntax=ExplicitVRLittleEndian,
            )
            answers += [int(assoc.send_c_store(ds).Status), int(assoc.send_c_echo().Status)]
    finally:
        assoc.release()
    assert answers == [status.SUCCESS] * 7
    stored = DicomInstance.objects.filter(sop_instance_uid__in=[ds.SOPInstanceUID for ds in images])
    assert stored.count() == 3


@pytest.mark.parametrize(
    ("second", "logged"),
    [
        (_item(1, 0x03, b"\0" * 8), "a command fragment arrived inside a C-STORE's data set"),
        (_item(3, 0x02, b"\0" * 8), "a data set fragment on context 3, the C-STORE's is 1"),
    ],
)
def test_p_data_out_of_order_is_aborted_and_logged_with_no_file_left(
    listener, isolated_data, second, logged
):
    proc, port = listener
    ds = hostile.image()
    sock = _associate(port)
    try:
        sock.sendall(_pdu(_item(1, 0x03, _command(ds, 1))))
        sock.sendall(_pdu(_item(1, 0x00, hostile._body(ds)[:500])))
        sock.sendall(_pdu(second))
        pdu_type, _ = rawpeer.read_pdu(sock)
    finally:
        sock.close()
    assert pdu_type == 0x07  # A-ABORT
    wait_until(lambda: logged in proc.output(), 5)
    assert "broke the P-DATA protocol" in proc.output()
    wait_until(lambda: not _spool_partials(isolated_data), 5)
    assert hostile.echo(port)
    assert not DicomInstance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).exists()


def test_a_peer_gone_mid_object_leaves_no_partial_file(listener, isolated_data):
    _, port = listener
    ds = hostile.image(size=256)
    sock = _associate(port)
    sock.sendall(_pdu(_item(1, 0x03, _command(ds, 1))))
    sock.sendall(_pdu(_item(1, 0x00, hostile._body(ds)[:20000])))
    wait_until(lambda: _spool_partials(isolated_data), 5)  # the object is arriving
    sock.close()
    wait_until(lambda: not _spool_partials(isolated_data), 5)
    assert not DicomInstance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).exists()
