"""Socket and association hardening for pynetdicom, in one place.

- accepted sockets get a timeout, so a peer stalling mid-PDU can't hold a thread;
- a PDU must also arrive whole within a deadline (the A-ASSOCIATE-RQ within the ACSE timeout
  of connecting, any other within the network timeout), so a peer trickling a byte at a time
  (slowloris), which resets the per-recv timeout with each byte, can't hold one either;
- TCP_NODELAY, or Nagle's algorithm makes small DIMSE responses wait ~40 ms;
- a declared PDU length beyond what we negotiated is refused before reading it;
- bytes a peer sends after we aborted, or after a first PDU of unknown type (HTTP, TLS,
  noise), are not read as more PDUs (one A-ABORT, one log line, not one per 6 bytes);
- association requests go through ``access.authorise_association``;
- the listener's socket may share its port with sibling processes (SO_REUSEPORT), and
  closes a connection at accept beyond the open-connection and per-host limits;
- on the TLS port, each connection's handshake runs in its own thread, with a timeout.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from typing import Any, cast

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connections
from pynetdicom import evt
from pynetdicom.acse import ACSE
from pynetdicom.pdu_primitives import A_ASSOCIATE
from pynetdicom.transport import AssociationSocket, ThreadedAssociationServer

from dicomnet.dimse.pdu import PDU_NAMES
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
# ... temporary congestion: the database that says who may associate is unreachable
REJECT_TEMPORARY_CONGESTION = (0x02, 0x03, 0x01)


class PduTooLarge(OSError):
    pass


class PduTooSlow(TimeoutError):
    pass


def _local_max_pdu(sock: AssociationSocket) -> int:
    assoc = sock.assoc
    local = assoc.acceptor if assoc.is_acceptor else assoc.requestor
    max_length = int(local.maximum_length or 0)
    return max_length if max_length > 0 else 16 * 1024 * 1024


def _read_deadline(sock: AssociationSocket) -> tuple[float | None, str]:
    """When the PDU being read must have arrived (``time.monotonic``), and which timeout says so.

    pynetdicom checks its ARTIM and idle timers only between PDUs; a read in progress is
    bounded by nothing but the per-recv socket timeout, which every byte restarts.
    """
    assoc = sock.assoc
    # Awaiting the A-ASSOCIATE-RQ (Sta2; or still Sta1, as the DUL may read the socket before
    # it handles the connection event): the ACSE timeout counts from the connection.
    if assoc.is_acceptor and assoc.dul.state_machine.current_state in ("Sta1", "Sta2"):
        deadline = getattr(assoc, "nexrel_request_deadline", None)
        return deadline, f"DICOM_ACSE_TIMEOUT ({assoc.acse_timeout} s) of connecting"
    timeout = assoc.network_timeout
    if timeout is None:
        return None, ""
    return time.monotonic() + timeout, f"DICOM_NETWORK_TIMEOUT ({timeout} s)"


def _guarded_recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    """Read exactly ``nr_bytes`` (fewer if the peer closes), refusing oversized PDUs.

    Replaces pynetdicom's reader, which trusts the declared length and reads in 4 KiB
    pieces: here the length is checked first, then the buffer is filled in place with
    large reads (a 4 MB image is a few hundred syscalls fewer), by ``_read_deadline``.
    """
    state = self.assoc.dul.state_machine.current_state
    if state == "Sta13" or getattr(self.assoc, "nexrel_not_dicom", False):
        # Awaiting the close after our A-ABORT (or A-RELEASE-RP), or about to abort: PS3.8
        # ignores whatever arrives now, but pynetdicom reads it as PDUs, answering every 6
        # bytes of an HTTP request with an error line and one more A-ABORT. Read it as the
        # close it should be.
        return bytearray()
    limit = max(_local_max_pdu(self), _NON_PDATA_ALLOWANCE) + 6
    peer = getattr(self.assoc.requestor, "address", "?")
    if nr_bytes > limit:
        log.warning(
            "peer %s declared a PDU of %d bytes, beyond our maximum %d: closing",
            peer,
            nr_bytes,
            limit,
        )
        raise PduTooLarge(f"declared PDU length {nr_bytes} exceeds maximum {limit}")
    sock = cast(socket.socket, self.socket)
    deadline, which = _read_deadline(self)
    try:
        buffer = _recv_exactly(sock, nr_bytes, deadline)
    except PduTooSlow as exc:
        log.warning("peer %s too slow: %s within %s: closing", peer, exc, which)
        raise
    if nr_bytes == 6 and self.assoc.is_acceptor and state in ("Sta1", "Sta2"):
        _check_first_pdu(self, bytes(buffer), peer)
    elif nr_bytes == 6 and state == "Sta6" and buffer[:1] in _OUT_OF_TURN:
        # Established: pynetdicom aborts (AA-8) without a word.
        name = PDU_NAMES[buffer[0]]
        log.warning("peer %s sent %s inside an association: aborting", peer, _an(name))
    return buffer


def _an(pdu_name: str) -> str:
    return f"an {pdu_name}" if pdu_name.startswith("A-") else f"a {pdu_name}"


def _check_first_pdu(sock: AssociationSocket, header: bytes, peer: str) -> None:
    """The first PDU header of a connection: anything but an A-ASSOCIATE-RQ is aborted.

    Said in the log once, in words an operator can act on (pynetdicom says "Unknown PDU
    type", or nothing for a known PDU out of turn). An unknown type is not read further
    (pynetdicom reads no more of it): the rest of the stream isn't either.
    """
    pdu_type = header[:1]
    if pdu_type == b"\x01":
        return
    if pdu_type not in _PDU_TYPES:
        sock.assoc.nexrel_not_dicom = True  # type: ignore[attr-defined]
    foreign = _foreign_protocol(header)
    if foreign:
        what, hint = foreign
        log.warning(
            "peer %s sent %s to the DICOM port, not an A-ASSOCIATE-RQ (%s): aborting",
            peer,
            what,
            hint,
        )
    elif pdu_type in _PDU_TYPES:
        name = PDU_NAMES[pdu_type[0]]
        log.warning("peer %s sent %s before any A-ASSOCIATE-RQ: aborting", peer, _an(name))


def _recv_exactly(sock: socket.socket, nr_bytes: int, deadline: float | None) -> bytearray:
    """``nr_bytes`` from ``sock`` (fewer if it closes), all by ``deadline`` or ``PduTooSlow``.

    The per-recv socket timeout stays in force; near the deadline it is cut to what is left.
    """
    per_recv = sock.gettimeout()
    shortened = False
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    received = 0
    try:
        while received < nr_bytes:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if per_recv is None or left < per_recv:
                    sock.settimeout(left)
                    shortened = True
            count = sock.recv_into(view[received:], nr_bytes - received)
            if not count:  # connection closed: return what arrived, as pynetdicom does
                break
            received += count
    except TimeoutError:
        if not shortened and (deadline is None or time.monotonic() < deadline):
            raise  # the per-recv timeout (DICOM_SOCKET_TIMEOUT): pynetdicom logs it
        raise PduTooSlow(f"only {received} of {nr_bytes} bytes of a PDU arrived") from None
    finally:
        view.release()
        if shortened:
            sock.settimeout(per_recv)
    del buffer[received:]
    return buffer


_PDU_TYPES = [bytes([pdu_type]) for pdu_type in PDU_NAMES]
# Never valid once associated (PS3.8 table 9-10, Sta6: AA-8, an A-ABORT).
_OUT_OF_TURN = [b"\x01", b"\x02", b"\x03", b"\x06"]
_HTTP_METHODS = (b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN")


def _foreign_protocol(head: bytes) -> tuple[str, str] | None:
    """What the first 6 bytes of a connection are, when another protocol's, and a hint.

    pynetdicom only says "Unknown PDU type"; an operator can act on "TLS ClientHello".
    """
    if head[:2] == b"\x16\x03":  # a TLS handshake record
        return "a TLS ClientHello", "a device set up for DICOM TLS, on the plain port?"
    if head[:4] in _HTTP_METHODS:
        return "an HTTP request", "a web client, or a proxy's health check?"
    return None


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
            try:
                decision = authorise_association(
                    called_ae=str(rq.called_ae_title),
                    calling_ae=str(rq.calling_ae_title),
                    peer_address=peer,
                    peer_certificate=tls.peer_certificate(
                        cast(AssociationSocket, self.assoc.dul.socket).socket
                    ),
                )
                if isinstance(decision, AssociationGrant):
                    self._refuse_services(decision, rq)
            except (DatabaseError, InterfaceError) as exc:
                # Without it no one can be authorised: a transient rejection now, which the
                # device retries, rather than a dead thread and a caller left waiting.
                decision = AssociationRefusal(
                    REJECT_TEMPORARY_CONGESTION, f"database unavailable: {exc}".strip()
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
    if event.assoc.acse_timeout is not None:  # for _read_deadline, before any read
        event.assoc.nexrel_request_deadline = (  # type: ignore[attr-defined]
            time.monotonic() + event.assoc.acse_timeout
        )
    if sock is not None:
        sock.settimeout(settings.DICOM_SOCKET_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    event.assoc.acse = PracticeACSE(event.assoc)


def on_conn_close(event: evt.Event) -> None:
    assoc = event.assoc
    state = assoc.dul.state_machine.current_state
    if assoc.is_acceptor and assoc.requestor.primitive is None and state in ("Sta2", "Sta13"):
        # Closed before any A-ASSOCIATE-RQ (a TCP probe, a peer stalled mid-PDU), or once
        # aborted for what it sent instead (Sta13: noise, HTTP, a PDU out of turn). pynetdicom
        # (AA-5, AR-5) gives the association thread nothing to wake on, so it would hold one
        # of the bounded association slots for the whole ACSE timeout. None reads as "no
        # request".
        assoc.dul.to_user_queue.put(None)  # type: ignore[arg-type]
    # Each association thread opened its own database connection.
    if threading.current_thread() is event.assoc:
        connections.close_all()


HARDENING_HANDLERS = [
    (evt.EVT_CONN_OPEN, on_conn_open),
    (evt.EVT_CONN_CLOSE, on_conn_close),
]


class ReusePortAssociationServer(ThreadedAssociationServer):
    """Lets several listener processes accept on one port; the kernel spreads connections.

    Also bounds connections (``verify_request``): pynetdicom starts two threads for every
    one it accepts, and counts one that has not yet sent its request against
    ``DICOM_MAX_ASSOCIATIONS`` for the whole ACSE timeout, so a few idle sockets would lock
    every device out, and many would exhaust threads and memory.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Set before the base constructor, which binds and listens.
        self._nexrel_lock = threading.Lock()  # the open sockets, from accept and TLS threads
        self._nexrel_open: dict[socket.socket, str] = {}  # accepted and not closed: peer host
        self._nexrel_refused = 0  # refusals since the last line logged
        self._nexrel_refusal_logged = -1.0
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        listening = cast(socket.socket, self.socket)  # made by the constructor, before binding
        if hasattr(socket, "SO_REUSEPORT"):
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Accept unless the listener holds ``DICOM_MAX_CONNECTIONS`` open connections, or
        the host has ``DICOM_MAX_PENDING_PER_HOST`` awaiting their A-ASSOCIATE-RQ.

        Runs in the accept thread, before any thread is started for the connection.
        Connections are the accepted sockets not yet closed, so nothing needs releasing.
        """
        host = str(client_address[0])
        with self._nexrel_lock:
            return self._admit(request, host)

    def track_connection(self, sock: socket.socket, host: str) -> None:
        """Count ``sock`` as open: the TLS port's handshake replaces the accepted socket
        (which it detaches, so it would no longer count) with the wrapped one."""
        with self._nexrel_lock:
            self._nexrel_open[sock] = host

    def _admit(self, request: Any, host: str) -> bool:
        open_sockets = {s: h for s, h in self._nexrel_open.items() if s.fileno() != -1}
        requested = {
            a.dul.socket.socket
            for a in self.ae.active_associations
            if a.is_acceptor and a.dul.socket is not None and a.requestor.primitive is not None
        }
        pending = sum(1 for s, h in open_sockets.items() if h == host and s not in requested)
        refusal = ""
        if len(open_sockets) >= settings.DICOM_MAX_CONNECTIONS:
            refusal = f"{len(open_sockets)} connections open (DICOM_MAX_CONNECTIONS)"
        elif pending >= settings.DICOM_MAX_PENDING_PER_HOST:
            refusal = (
                f"{pending} connections from {host} have sent no A-ASSOCIATE-RQ yet "
                "(DICOM_MAX_PENDING_PER_HOST)"
            )
        else:
            open_sockets[request] = host
        self._nexrel_open = open_sockets
        if refusal:
            self._log_refusal(host, refusal)
        return not refusal

    def _log_refusal(self, host: str, refusal: str) -> None:
        """One line a second at most: a flood of connections must not flood the log."""
        now = time.monotonic()
        self._nexrel_refused += 1
        if now - self._nexrel_refusal_logged >= 1.0:
            log.warning(
                "connection from %s closed at accept: %s; %d refused since the last such line",
                host,
                refusal,
                self._nexrel_refused,
            )
            self._nexrel_refused, self._nexrel_refusal_logged = 0, now


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
        self.track_connection(tls_sock, peer)
        super().process_request_thread(tls_sock, client_address)
