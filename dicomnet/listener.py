"""Build the listener's application entity and serve it until told to stop."""

from __future__ import annotations

import importlib
import logging
import tempfile
import threading

from django.conf import settings
from pydicom import uid
from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.sop_class import Verification

from dicomnet import incoming, network, scp, storage

log = logging.getLogger("dicomnet.listener")

# Dental classes named here too, so a pynetdicom upgrade that drops one is noticed in tests.
DENTAL_STORAGE_CLASSES = [
    "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray, For Presentation
    "1.2.840.10008.5.1.4.1.1.1.3.1",  # Digital Intra-Oral X-Ray, For Processing
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray, For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray, For Processing
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.13.1.2",  # X-Ray 3D Craniofacial
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic
]

# Every common syntax. pynetdicom picks the first of *our* list that the sender offers, so
# the order is a policy: explicit VR first (keeps vendors' private tags typed), then the
# lossless compressions (kept as the device made them), uncompressed variants, implicit VR,
# and lossy syntaxes last: never ask a sender to compress lossily what it could send intact.
_LOSSY = {
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLSNearLossless,
    uid.JPEG2000,
    uid.JPEG2000MC,
    uid.HTJ2K,
}
_COMPRESSED = uid.JPEGLSTransferSyntaxes + uid.JPEG2000TransferSyntaxes + uid.JPEGTransferSyntaxes
ALL_TRANSFER_SYNTAXES = list(
    dict.fromkeys(
        [uid.ExplicitVRLittleEndian]
        + [ts for ts in _COMPRESSED if ts not in _LOSSY]
        + uid.RLETransferSyntaxes
        + [uid.DeflatedExplicitVRLittleEndian, uid.ExplicitVRBigEndian, uid.ImplicitVRLittleEndian]
        + [ts for ts in _COMPRESSED if ts in _LOSSY]
    )
)


def configure_pynetdicom() -> None:
    """Process-wide pynetdicom settings: stream C-STORE data to the spool, guard PDUs."""
    _config.STORE_RECV_CHUNKED_DATASET = True
    incoming.install()  # a full disk while receiving becomes 0xA700, not an abort
    # Incoming objects are written by pynetdicom via tempfile: keep them under the spool so
    # the final rename is atomic (same filesystem), and per process so recovery knows whose.
    tmp_dir = storage.spool_tmp_dir()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(tmp_dir)
    network.install_pdu_guard()
    # pynetdicom formats every C-FIND identifier for its log, even with that log off.
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False


def build_ae(ae_title: str | None = None) -> AE:
    ae = AE(ae_title=ae_title or settings.DICOM_AE_TITLE)
    ae.maximum_pdu_size = settings.DICOM_MAX_PDU
    ae.maximum_associations = settings.DICOM_MAX_ASSOCIATIONS
    ae.acse_timeout = settings.DICOM_ACSE_TIMEOUT
    ae.dimse_timeout = settings.DICOM_DIMSE_TIMEOUT
    ae.network_timeout = settings.DICOM_NETWORK_TIMEOUT
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    abstract = {cx.abstract_syntax for cx in AllStoragePresentationContexts}
    abstract.update(DENTAL_STORAGE_CLASSES)
    for sop_class in sorted(abstract):
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    for module in service_modules():
        configure = getattr(module, "configure_ae", None)
        if configure is not None:
            configure(ae)
    return ae


# Services beyond C-ECHO/C-STORE. Each module may define ``HANDLERS`` (pynetdicom event
# handler pairs), ``configure_ae(ae)`` (to add its presentation contexts) and
# ``FIND_HANDLERS`` ({SOP class UID: handler}: one EVT_C_FIND handler dispatches to them).
SERVICE_MODULES = ("worklist.mwl", "worklist.mpps", "dicomnet.qrscp")


def service_modules() -> list:
    modules = []
    for module_path in SERVICE_MODULES:
        try:
            modules.append(importlib.import_module(module_path))
        except ModuleNotFoundError as exc:
            if exc.name != module_path:
                raise
    return modules


def find_handlers() -> dict[str, scp.FindHandler]:
    handlers: dict[str, scp.FindHandler] = {}
    for module in service_modules():
        handlers.update(getattr(module, "FIND_HANDLERS", {}))
    return handlers


def event_handlers() -> list:
    handlers = network.HARDENING_HANDLERS + scp.STORE_HANDLERS
    handlers = handlers + [(evt.EVT_C_FIND, scp.handle_find, [find_handlers()])]
    for module in service_modules():
        handlers = handlers + list(getattr(module, "HANDLERS", []))
    return handlers


def serve(stop: threading.Event, *, port: int | None = None, address: str | None = None) -> None:
    """Accept associations until ``stop`` is set, then shut down cleanly."""
    configure_pynetdicom()
    ae = build_ae()
    bind = (address or settings.DICOM_BIND_ADDRESS, port or settings.DICOM_PORT)
    server = ae.make_server(
        bind,
        evt_handlers=event_handlers(),
        server_class=network.ReusePortAssociationServer,
    )
    ae._servers.append(server)  # as start_server() does; server.shutdown() removes it
    thread = threading.Thread(target=server.serve_forever, name="dicom-accept", daemon=True)
    thread.start()
    log.info(
        "DICOM listener %s on %s:%s (max PDU %d, max %d associations)",
        ae.ae_title,
        bind[0],
        bind[1],
        ae.maximum_pdu_size,
        ae.maximum_associations,
    )
    stop.wait()
    log.info("DICOM listener stopping")
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
