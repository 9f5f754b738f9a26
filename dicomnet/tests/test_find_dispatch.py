"""The one EVT_C_FIND handler dispatches by SOP class (``dicomnet.net.dispatch.handle_find``).

A real pynetdicom server in this process, with the listener's hardening (association
authorisation) and the dispatcher bound to a services table: a class with no service is
refused 0x0122, a service that raises gets 0xC311 logged with its traceback, and the MWL
service answers through the same table.
"""

from __future__ import annotations

import logging

import pytest
from pydicom import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import ColorPaletteInformationModelFind as UNSERVED
from pynetdicom.sop_class import HangingProtocolInformationModelFind as BROKEN
from pynetdicom.sop_class import ModalityWorklistInformationFind as MWL

from dicomnet.dimse import status
from dicomnet.net import dispatch, hardening
from dicomnet.net.listener import build_ae, find_handlers
from tests.fixtures import free_port


def broken_service(event, *, grant, device):
    match = Dataset()
    match.PatientName = "Côté^Zoé"
    yield status.PENDING, match
    raise RuntimeError("service bug")


@pytest.fixture
def server(transactional_db, practice):
    ae = build_ae()
    for sop_class in (UNSERVED, BROKEN):
        ae.add_supported_context(sop_class)
    handlers = {**find_handlers(), str(BROKEN): broken_service}
    port = free_port()
    bound = hardening.HARDENING_HANDLERS + [(evt.EVT_C_FIND, dispatch.handle_find, [handlers])]
    running = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=bound)
    yield port
    running.shutdown()


def statuses(port: int, sop_class: str) -> list[int]:
    ae = AE(ae_title="CARESTREAM")
    ae.add_requested_context(sop_class)
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
    assert assoc.is_established
    query = Dataset()
    query.PatientName = ""
    try:
        return [rsp.Status for rsp, _ in assoc.send_c_find(query, sop_class)]
    finally:
        assoc.release()


def test_find_is_dispatched_by_sop_class(server, caplog):
    with caplog.at_level(logging.WARNING, logger="dicomnet.net.dispatch"):
        assert statuses(server, UNSERVED) == [status.SOP_CLASS_NOT_SUPPORTED]
        assert statuses(server, BROKEN) == [status.PENDING, status.FIND_UNABLE_TO_PROCESS]
        mwl = statuses(server, MWL)
    assert mwl[-1] == status.SUCCESS and set(mwl[:-1]) == {status.PENDING}
    assert len(mwl) > 1  # the demo's active items
    messages = {r.getMessage(): r for r in caplog.records}
    assert any(f"no service for SOP class {UNSERVED}" in m for m in messages)
    (failure,) = [r for r in caplog.records if r.exc_info]
    assert "handler failure" in failure.getMessage()
    assert str(failure.exc_info[1]) == "service bug"
