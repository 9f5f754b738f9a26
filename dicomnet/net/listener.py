"""Build the listener's application entity and serve it until told to stop."""

from __future__ import annotations

import importlib
import logging
import ssl
import tempfile
import threading
from types import ModuleType

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from dicomnet.dimse import encoded
from dicomnet.net import (
    audit_events,
    dispatch,
    hardening,
    heartbeat,
    incoming,
    lean_store,
    reactor,
    tls,
)
from dicomnet.net.contexts import ALL_TRANSFER_SYNTAXES, DENTAL_STORAGE_CLASSES

log = logging.getLogger("dicomnet.net.listener")


def configure_pynetdicom() -> None:
    """Process-wide pynetdicom settings: stream C-STORE data to the spool, guard PDUs, send
    kept C-FIND answers as their bytes (``dicomnet.dimse.encoded``)."""
    _config.STORE_RECV_CHUNKED_DATASET = True
    incoming.install()  # a full disk while receiving becomes 0xA700, not an abort
    # Incoming objects are written by pynetdicom via tempfile: keep them under the spool so
    # the final rename is atomic (same filesystem), and per process so recovery knows whose.
    tmp_dir = incoming.spool_tmp_dir()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(tmp_dir)
    hardening.install_pdu_guard()
    # pynetdicom formats every C-FIND identifier for its log, even with that log off.
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False
    if not logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
        # Its standard handlers format every PDU and DIMSE message before the log drops it.
        _config.LOG_HANDLER_LEVEL = "none"
    encoded.install()  # kept C-FIND answers go out as the bytes they were encoded to


def build_ae(ae_title: str | None = None) -> AE:
    ae = AE(ae_title=ae_title or settings.DICOM_AE_TITLE)
    ae.maximum_pdu_size = settings.DICOM_MAX_PDU
    ae.maximum_associations = settings.DICOM_MAX_ASSOCIATIONS
    ae.acse_timeout = settings.DICOM_ACSE_TIMEOUT
    ae.dimse_timeout = settings.DICOM_DIMSE_TIMEOUT
    ae.network_timeout = settings.DICOM_NETWORK_TIMEOUT
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    abstract: set[str] = {
        cx.abstract_syntax for cx in AllStoragePresentationContexts if cx.abstract_syntax
    }
    abstract.update(DENTAL_STORAGE_CLASSES)
    for sop_class in sorted(abstract):
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    for module in service_modules():
        configure = getattr(module, "configure_ae", None)
        if configure is not None:
            configure(ae)
    return ae


class MissingService(ImproperlyConfigured):
    """A configured service module can't be imported: the listener must not start without it."""


def service_modules() -> list[ModuleType]:
    """The modules named in ``settings.DICOM_SERVICE_MODULES``, each imported.

    Each module may define ``HANDLERS`` (pynetdicom event handler pairs), ``configure_ae(ae)``
    (to add its presentation contexts), ``FIND_HANDLERS`` ({SOP class UID: handler}: one
    EVT_C_FIND handler dispatches to them) and ``LEAN_STORE_ANSWER`` (the C-STORE answerer
    of storage-only associations' lean path, ``lean_store``). A module that can't be
    imported stops the listener: a listener silently without query/retrieve or the
    worklist is worse than none.
    """
    modules = []
    for module_path in settings.DICOM_SERVICE_MODULES:
        try:
            modules.append(importlib.import_module(module_path))
        except ImportError as exc:
            raise MissingService(
                f"DICOM service module {module_path!r} can't be imported ({exc}): "
                "fix DICOM_SERVICE_MODULES or the installation"
            ) from exc
    return modules


def find_handlers() -> dict[str, dispatch.FindHandler]:
    handlers: dict[str, dispatch.FindHandler] = {}
    for module in service_modules():
        handlers.update(getattr(module, "FIND_HANDLERS", {}))
    return handlers


def store_answer() -> lean_store.StoreAnswer | None:
    """The store service's ``LEAN_STORE_ANSWER``, for storage-only associations' lean path."""
    answers = [getattr(m, "LEAN_STORE_ANSWER", None) for m in service_modules()]
    return next((a for a in answers if a is not None), None)


def event_handlers() -> list:
    # The audit's first: its connection-close writes before hardening's closes the database.
    handlers: list = audit_events.HANDLERS + hardening.HARDENING_HANDLERS + dispatch.ECHO_HANDLERS
    handlers = handlers + [(evt.EVT_C_FIND, dispatch.handle_find, [find_handlers()])]
    for module in service_modules():
        handlers = handlers + list(getattr(module, "HANDLERS", []))
    return handlers


def make_servers(
    ae: AE,
    address: str,
    *,
    port: int | None,
    tls_port: int | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> list[ThreadedAssociationServer]:
    """The plain server on ``port`` and the TLS one on ``tls_port``, each when given; bound.

    The TLS server gets ``tls_context`` but does the handshakes itself, off the accept loop
    (``hardening.TlsAssociationServer``). Both accept ``reactor.EventDrivenAssociation``s
    unless DICOM_EVENT_DRIVEN_REACTOR is off.
    """
    handlers = event_handlers()
    lean_store.install(store_answer() if settings.DICOM_LEAN_STORE else None)
    request_handler = reactor.RequestHandler if settings.DICOM_EVENT_DRIVEN_REACTOR else None
    servers: list[ThreadedAssociationServer] = []
    if port is not None:
        servers.append(
            ae.make_server(
                (address, port),
                evt_handlers=handlers,
                server_class=hardening.ReusePortAssociationServer,
                request_handler=request_handler,
            )
        )
    if tls_port is not None and tls_context is not None:
        servers.append(
            ae.make_server(
                (address, tls_port),
                evt_handlers=handlers,
                ssl_context=tls_context,
                server_class=hardening.TlsAssociationServer,
                request_handler=request_handler,
            )
        )
    return servers


def serve(
    stop: threading.Event,
    *,
    port: int | None = None,
    address: str | None = None,
    tls_port: int | None = None,
) -> None:
    """Accept associations until ``stop`` is set, then shut down cleanly.

    Every configured service is imported, and the TLS files are read, before any
    process-wide setting is changed or any port is bound: a missing one stops the start.
    Plain DICOM is served on ``port`` (DICOM_PORT) unless DICOM_PLAIN_PORT_ENABLED is false,
    TLS on ``tls_port`` (DICOM_TLS_PORT) when set.
    """
    service_modules()
    tls_port = tls_port or settings.DICOM_TLS_PORT
    tls_context = tls.listener_context() if tls_port is not None else None
    if tls_port is None and not settings.DICOM_PLAIN_PORT_ENABLED:
        raise ImproperlyConfigured("DICOM_PLAIN_PORT_ENABLED is false and no DICOM_TLS_PORT set")
    configure_pynetdicom()
    ae = build_ae()
    bind = address or settings.DICOM_BIND_ADDRESS
    plain_port = (port or settings.DICOM_PORT) if settings.DICOM_PLAIN_PORT_ENABLED else None
    servers = make_servers(ae, bind, port=plain_port, tls_port=tls_port, tls_context=tls_context)
    threads = []
    for server in servers:
        ae._servers.append(server)  # as start_server() does; server.shutdown() removes it
        name = "dicom-accept-tls" if server.ssl_context else "dicom-accept"
        thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        thread.start()
        threads.append(thread)
    log.info(
        "DICOM listener %s on %s (max PDU %d, max %d associations)",
        ae.ae_title,
        ", ".join(describe(server) for server in servers),
        ae.maximum_pdu_size,
        ae.maximum_associations,
    )
    # For /health/ and the metrics: alive, and how busy (dicomnet/net/heartbeat.py).
    beating = heartbeat.start_heartbeat(
        stop, lambda: sum(1 for a in ae.active_associations if a.is_acceptor)
    )
    stop.wait()
    log.info("DICOM listener stopping")
    beating.join(timeout=5)
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=10)


def describe(server: ThreadedAssociationServer) -> str:
    host, port = server.server_address[:2]
    if server.ssl_context is None:
        return f"{host}:{port}"
    mutual = server.ssl_context.verify_mode == ssl.CERT_REQUIRED
    return f"{host}:{port} (TLS{', client certificates required' if mutual else ''})"
