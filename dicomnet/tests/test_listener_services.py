"""Every DIMSE service is bound, or the listener does not start.

The services come from ``settings.DICOM_SERVICE_MODULES``; a module that can't be imported
stops the listener (and the ``dicom_listener`` command) with the module named, rather than
leaving a listener that silently answers no worklist or no query/retrieve.
"""

from __future__ import annotations

import socket
import tempfile
import threading

import pytest
from django.core.management import call_command
from pynetdicom import _config, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    DigitalIntraOralXRayImageStorageForPresentation,
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from dicomnet.net import listener
from dicomnet.net.dispatch import handle_find
from dicomnet.net.listener import MissingService
from tests.fixtures import free_port

FIND_SERVICES = {
    str(ModalityWorklistInformationFind): "worklist.mwl",
    str(PatientRootQueryRetrieveInformationModelFind): "dicomnet.qr.scp",
    str(StudyRootQueryRetrieveInformationModelFind): "dicomnet.qr.scp",
}
BOUND_EVENTS = {
    evt.EVT_C_ECHO: "dicomnet.net.dispatch",
    evt.EVT_C_STORE: "dicomnet.ingest.scp",
    evt.EVT_C_FIND: "dicomnet.net.dispatch",
    evt.EVT_C_MOVE: "dicomnet.qr.scp",
    evt.EVT_C_GET: "dicomnet.qr.scp",
    evt.EVT_N_CREATE: "worklist.mpps",
    evt.EVT_N_SET: "worklist.mpps",
}


def test_every_service_is_bound():
    """Echo, store, MWL, MPPS and Q/R find, move and get: each handler and its contexts."""
    bound = {handler[0]: handler for handler in listener.event_handlers()}
    for event, module in BOUND_EVENTS.items():
        assert event in bound, f"{event.name} is not bound"
        assert bound[event][1].__module__ == module
    find = bound[evt.EVT_C_FIND]
    assert find[1] is handle_find
    (services,) = find[2]
    assert {uid: h.__module__ for uid, h in services.items()} == FIND_SERVICES

    accepted = {cx.abstract_syntax for cx in listener.build_ae().supported_contexts}
    for sop_class in (
        Verification,
        CTImageStorage,
        DigitalIntraOralXRayImageStorageForPresentation,
        ModalityWorklistInformationFind,
        ModalityPerformedProcedureStep,
        PatientRootQueryRetrieveInformationModelFind,
        PatientRootQueryRetrieveInformationModelMove,
        PatientRootQueryRetrieveInformationModelGet,
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelGet,
    ):
        assert str(sop_class) in accepted, f"{sop_class.name} is not accepted"


@pytest.fixture
def a_service_missing(settings):
    settings.DICOM_SERVICE_MODULES = (*settings.DICOM_SERVICE_MODULES, "dicomnet.qr.gone")
    return "dicomnet.qr.gone"


def nothing_listens(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_listener_refuses_to_start_when_a_service_module_is_missing(a_service_missing):
    port = free_port()
    before = (tempfile.tempdir, _config.STORE_RECV_CHUNKED_DATASET)
    with pytest.raises(MissingService, match=r"'dicomnet\.qr\.gone' can't be imported"):
        listener.serve(threading.Event(), port=port, address="127.0.0.1")
    assert nothing_listens(port)
    # refused before any process-wide setting changed (temp dir, streamed C-STORE)
    assert (tempfile.tempdir, _config.STORE_RECV_CHUNKED_DATASET) == before


def test_the_listener_command_fails_naming_the_missing_module(db, a_service_missing):
    port = free_port()
    with pytest.raises(MissingService, match="fix DICOM_SERVICE_MODULES"):
        call_command("dicom_listener", "--processes", "1", "--no-reconcile", "--port", str(port))
    assert nothing_listens(port)


def test_a_module_that_fails_inside_its_own_imports_is_missing_too(settings, tmp_path, monkeypatch):
    """Not only an absent module: one whose own import breaks stops the listener as well."""
    (tmp_path / "broken_service.py").write_text("import no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.DICOM_SERVICE_MODULES = ("dicomnet.ingest.scp", "broken_service")
    with pytest.raises(MissingService, match="no_such_dependency"):
        listener.service_modules()
