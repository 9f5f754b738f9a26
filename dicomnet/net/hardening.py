"""Socket and association hardening for pynetdicom, in one place.

- accepted sockets get a timeout, so a peer stalling mid-PDU can't hold a thread;
- TCP_NODELAY, or Nagle's algorithm makes small DIMSE responses wait ~40 ms;
- a declared PDU length beyond what we negotiated is refused before reading it;
- association requests go through ``access.authorise_association``;
- the listener's socket may share its port with sibling processes (SO_REUSEPORT);
- on the TLS port, each connection's handshake runs in its own thread, with a timeout.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import cast

from django.conf import settings
from django.db import connections
from pynetdicom import evt
from pynetdicom.acse import ACSE
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.transport import AssociationSocket, ThreadedAssociationServer

from dicomnet.models import DicomServer
from dicomnet.net import audit_events, tls
from dicomnet.net.access import (
    AssociationGrant,
    AssociationRefusal,
    authorise_association,
    refused_syntaxes,
)
from nexrel import metrics
from patients import audit
from patients.models import AuditEvent

log = logging.getLogger("dicomnet.net.hardening")

_NON_PDATA_ALLOWANCE = 64 * 1024  # an A-ASSOCIATE-RQ with many contexts can exceed a small max


# A-ASSOCIATE-RJ: transient, service provider (presentation related), local limit exceeded
REJECT_LOCAL_LIMIT = (0x02, 0x03, 0x02)


class PduTooLarge(OSError):
    pass


def _local_max_pdu(sock: AssociationSocket) -> int:
    assoc = sock.assoc
    local = assoc.acceptor if assoc.is_acceptor else assoc.requestor
    max_length = int(local.maximum_length or 0)
    return max_length if max_length > 0 else 16 * 1024 * 1024


def _guarded_recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    """Read exactly ``nr_bytes`` (fewer if the peer closes), refusing oversized PDUs.

    Replaces pynetdicom's reader, which trusts the declared length and reads in 4 KiB
    pieces: here the length is checked first, then the buffer is filled in place with
    large reads (a 4 MB image is a few hundred syscalls fewer).
    """
    limit = max(_local_max_pdu(self), _NON_PDATA_ALLOWANCE) + 6
    if nr_bytes > limit:
        log.warning(
            "peer %s declared a PDU of %d bytes, beyond our maximum %d: closing",
            getattr(self.assoc.requestor, "address", "?"),
            nr_bytes,
            limit,
        )
        raise PduTooLarge(f"declared PDU length {nr_bytes} exceeds maximum {limit}")
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    received = 0
    while received < nr_bytes:
        count = cast(socket.socket, self.socket).recv_into(view[received:], nr_bytes - received)
        if not count:  # connection closed: return what arrived, as pynetdicom does
            view.release()
            del buffer[received:]
            return buffer
        received += count
    view.release()
    return buffer


def install_pdu_guard() -> None:
    """pynetdicom reads whatever length a PDU declares; refuse lengths we never offered."""
    AssociationSocket.recv = _guarded_recv  # type: ignore[method-assign]


class PracticeACSE(ACSE):
    """ACSE that asks the database who may associate, and logs every refusal."""

    def _negotiate_as_acceptor(self) -> None:
        audit_events.name_association(self.assoc)
        rq = cast(A_ASSOCIATE, self.requestor.primitive)  # the request being negotiated
        peer = str(self.assoc.requestor.address or "")
        # pynetdicom would refuse this too (later, and logging only at INFO): refuse it
        # here, before any database query, so that every rejection is logged with why.
        active = sum(1 for a in self.assoc.ae.active_associations if a.is_acceptor)
        if active > self.assoc.ae.maximum_associations:
            decision: AssociationGrant | AssociationRefusal = AssociationRefusal(
                REJECT_LOCAL_LIMIT,
                f"{active - 1} associations already active, the maximum "
                f"(DICOM_MAX_ASSOCIATIONS={self.assoc.ae.maximum_associations})",
            )
        else:
            decision = authorise_association(
                called_ae=str(rq.called_ae_title),
                calling_ae=str(rq.calling_ae_title),
                peer_address=peer,
                peer_certificate=tls.peer_certificate(
                    cast(AssociationSocket, self.assoc.dul.socket).socket
                ),
            )
        if not isinstance(decision, AssociationGrant):
            self.requestor.ae_title = rq.calling_ae_title
            log.warning(
                "association from %s rejected %s: %s", peer, decision.reject, decision.reason
            )
            metrics.ASSOCIATIONS.labels(
                outcome="rejected", reason="-".join(str(part) for part in decision.reject)
            ).inc()
            self.send_reject(*decision.reject)
            evt.trigger(self.assoc, evt.EVT_REJECTED, {})
            self.assoc.kill()
            return
        self.assoc.nexrel = decision  # type: ignore[attr-defined]
        metrics.ASSOCIATIONS.labels(outcome="accepted", reason="").inc()
        # The called AE was checked against the practices; let pynetdicom's own check pass.
        self.acceptor.ae_title = str(rq.called_ae_title).strip()
        self._refuse_services(decision, rq)
        super()._negotiate_as_acceptor()

    def _refuse_services(self, grant: AssociationGrant, rq: A_ASSOCIATE) -> None:
        """Drop from what we accept the contexts of the services this device may not use:
        pynetdicom then rejects them (abstract syntax not supported), and the DIMSE service
        is refused at association time, with a log line and an audit event."""
        server = DicomServer.objects.filter(pk=grant.server_id).first()
        if server is None:
            return
        requested = [str(cx.abstract_syntax) for cx in rq.presentation_context_definition_list]
        refused = refused_syntaxes(server, requested)
        if not refused:
            return
        self.acceptor.supported_contexts = [
            cx for cx in self.acceptor.supported_contexts if str(cx.abstract_syntax) not in refused
        ]
        reasons = sorted(set(refused.values()))
        log.warning(
            "association from %s (%s): %d presentation context(s) refused: %s",
            grant.calling_ae,
            grant.peer_address,
            len(refused),
            "; ".join(reasons),
        )
        audit.record(
            "110113",
            action="E",
            event_type="110132",
            what="contexts_refused",
            outcome=AuditEvent.Outcome.MINOR_FAILURE,
            outcome_text="; ".join(reasons),
            practice_id=grant.practice_id,
            ae_title=grant.calling_ae,
            address=grant.peer_address,
            detail={"abstract_syntaxes": sorted(refused)},
        )


def on_conn_open(event: evt.Event) -> None:
    sock = cast(AssociationSocket, event.assoc.dul.socket).socket  # set once connected
    if sock is not None:
        sock.settimeout(settings.DICOM_SOCKET_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    event.assoc.acse = PracticeACSE(event.assoc)


def on_conn_close(event: evt.Event) -> None:
    if event.assoc.is_acceptor and event.assoc.dul.state_machine.current_state == "Sta2":
        # Closed before any A-ASSOCIATE-RQ (a TCP probe, a peer stalled mid-PDU). pynetdicom
        # (AA-5) gives the association thread nothing to wake on, so it would hold one of the
        # bounded association slots for the whole ACSE timeout. None reads as "no request".
        event.assoc.dul.to_user_queue.put(None)  # type: ignore[arg-type]
    # Each association thread opened its own database connection.
    if threading.current_thread() is event.assoc:
        connections.close_all()


HARDENING_HANDLERS = [
    (evt.EVT_CONN_OPEN, on_conn_open),
    (evt.EVT_CONN_CLOSE, on_conn_close),
]


class ReusePortAssociationServer(ThreadedAssociationServer):
    """Lets several listener processes accept on one port; the kernel spreads connections."""

    def server_bind(self) -> None:
        listening = cast(socket.socket, self.socket)  # made by the constructor, before binding
        if hasattr(socket, "SO_REUSEPORT"):
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


class TlsAssociationServer(ReusePortAssociationServer):
    """The TLS port: the handshake runs in the connection's own thread, with a timeout.

    pynetdicom's ``get_request`` wraps the accepted socket and shakes hands there, in the one
    accept loop: a caller that connects and never sends its ClientHello would hold every
    other caller for as long as it likes. Here the accept loop only accepts; the thread
    ``ThreadingMixIn`` starts for each connection shakes hands (``tls.server_handshake``,
    DICOM_TLS_HANDSHAKE_TIMEOUT) before the association exists, and a failure closes that
    connection alone, with a log line saying why.
    """

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        listening = cast(socket.socket, self.socket)
        return listening.accept()  # TCP only: no handshake in the accept loop

    def process_request_thread(
        self,
        request: socket.socket | tuple[bytes, socket.socket],
        client_address: tuple[str, int] | str,
    ) -> None:
        peer = client_address[0] if isinstance(client_address, tuple) else client_address
        try:
            tls_sock = tls.server_handshake(
                cast(ssl.SSLContext, self.ssl_context),  # serve() gives one
                cast(socket.socket, request),
                timeout=settings.DICOM_TLS_HANDSHAKE_TIMEOUT,
            )
        except tls.HandshakeFailed as exc:
            # A port probe (a load balancer, wait_for_port) is not worth a warning.
            level = logging.INFO if exc.closed_early else logging.WARNING
            log.log(level, "TLS connection from %s closed: %s", peer, exc)
            return
        super().process_request_thread(tls_sock, client_address)
