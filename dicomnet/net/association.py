"""Association set-up shared by every SCU (query/retrieve, worklist, C-ECHO).

A device with ``use_tls`` is called over TLS (``tls.client_context``: its certificate
verified, ours presented) and, when it pins a certificate, must present that one.
Failures become messages a person can act on: the connection was refused, nothing answered
in time, the association was rejected (and why), its certificate is not trusted.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from pydicom import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.sop_class import Verification

from dicomnet.dimse import status
from dicomnet.models import DicomServer
from dicomnet.net import tls

log = logging.getLogger("dicomnet.net.association")

# A-ASSOCIATE-RJ (source, diagnostic) in words, PS3.8 Table 9-21.
REJECT_REASONS: dict[tuple[int | None, int | None], str] = {
    (1, 1): "no reason given",
    (1, 2): "application context not supported",
    (1, 3): "our calling AE title is not recognised",
    (1, 7): "the called AE title is not recognised",
    (2, 1): "no reason given (ACSE)",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded (too many associations)",
}


class ScuError(Exception):
    """The operation failed; the message is meant for the person who asked."""


def our_ae_title(server: DicomServer) -> str:
    return server.practice.ae_title or settings.DICOM_AE_TITLE


def peer_name(server: DicomServer) -> str:
    return f"{server.ae_title} at {server.host}:{server.port}"


def new_ae(server: DicomServer, timeout: float | None) -> AE:
    ae = AE(ae_title=our_ae_title(server))
    ae.connection_timeout = ae.acse_timeout = timeout or settings.DICOM_ACSE_TIMEOUT
    ae.dimse_timeout = ae.network_timeout = timeout or settings.DICOM_DIMSE_TIMEOUT
    return ae


class PinCheck:
    """EVT_CONN_OPEN of a TLS association we request: the peer's certificate against its pin.

    It runs once the handshake is done and before the A-ASSOCIATE-RQ is sent: on a mismatch
    the connection is shut, so the wrong peer is sent nothing and the association fails.
    """

    def __init__(self, server: DicomServer) -> None:
        self.server = server
        self.mismatch: str | None = None

    def on_conn_open(self, event: evt.Event) -> None:
        sock = cast(socket.socket, event.assoc.dul.socket.socket)  # type: ignore[union-attr]
        self.mismatch = tls.pin_mismatch(self.server, tls.peer_certificate(sock))
        if self.mismatch:
            log.warning("%s: connection closed: %s", peer_name(self.server), self.mismatch)
            with contextlib.suppress(OSError):  # already gone: nothing to send to anyway
                sock.shutdown(socket.SHUT_RDWR)


def connection_kwargs(server: DicomServer) -> tuple[dict[str, Any], PinCheck | None]:
    """``ae.associate`` keywords to reach ``server`` (TLS when it says so), and its pin check.

    Raises ``ScuError`` when TLS can't be set up (a CA or certificate file unreadable).
    """
    try:
        tls_args = tls.tls_args(server)
    except (OSError, ssl.SSLError) as exc:
        raise ScuError(f"TLS to {peer_name(server)} can't be set up: {exc}") from exc
    if tls_args is None:
        return {}, None
    pin = PinCheck(server)
    return {"tls_args": tls_args, "evt_handlers": [(evt.EVT_CONN_OPEN, pin.on_conn_open)]}, pin


class RejectSeen:
    """EVT_PDU_RECV: the A-ASSOCIATE-RJ the peer sent, if it sent one.

    pynetdicom (3.0) can lose a rejection: when the peer rejects and closes before the
    requesting thread has looked at the new connection, that thread finds it closed and
    aborts, and ``assoc.is_rejected`` stays False. The DUL thread decoded the PDU all the
    same, so keep it here and tell the rejection from a dropped connection.
    """

    def __init__(self) -> None:
        self.pdu: A_ASSOCIATE_RJ | None = None

    def on_pdu_recv(self, event: evt.Event) -> None:
        if isinstance(event.pdu, A_ASSOCIATE_RJ):
            self.pdu = event.pdu


def associate(ae: AE, server: DicomServer, **kwargs):
    connection, pin = connection_kwargs(server)
    rejected = RejectSeen()
    handlers = (
        kwargs.pop("evt_handlers", [])
        + connection.pop("evt_handlers", [])
        + [(evt.EVT_PDU_RECV, rejected.on_pdu_recv)]
    )
    started = time.monotonic()
    assoc = ae.associate(
        server.host,
        server.port,
        ae_title=server.ae_title,
        evt_handlers=handlers or None,
        **connection,
        **kwargs,
    )
    if not assoc.is_established:
        if pin is not None and pin.mismatch:
            raise ScuError(f"{peer_name(server)} was not called: {pin.mismatch}")
        waited = time.monotonic() - started
        timeout = cast(float, ae.acse_timeout)  # new_ae set it
        raise ScuError(
            association_failure(
                server=server, timeout=timeout, waited=waited, rejection=rejected.pdu
            )
        )
    return assoc


def status_message(peer: str, *, code: int, answer: Dataset, table: dict) -> str:
    """A failure status in words: its meaning in the service's status table, and the comment."""
    meaning = table.get(code, ("", "unknown status"))[1]
    comment = str(answer.get("ErrorComment", "") or "")
    return f"{peer} answered with status 0x{code:04X} ({meaning})" + (
        f": {comment}" if comment else ""
    )


def find_answers(
    assoc: Association, identifier: Dataset, model: str, *, peer: str, statuses: dict
) -> Iterator[Dataset]:
    """The matches of one C-FIND, until its final status.

    Silence, a lost association or a failure status raise ``ScuError`` with the reason
    (``statuses``: the service's table, for the meaning of a failure); what was received
    before is not to be used as if it were the whole answer.
    """
    timeout = cast(float, assoc.dimse_timeout)  # new_ae set it
    started = time.monotonic()
    for answer, found in assoc.send_c_find(identifier, model):
        code = answer.get("Status") if answer else None
        if code is None:
            if time.monotonic() - started >= timeout:
                raise ScuError(f"{peer} did not answer within {timeout:g} s")
            raise ScuError(f"{peer} closed the association before its last answer")
        if code in (status.PENDING, status.PENDING_WARNING):
            if found is not None:
                yield found
            continue
        if code != status.SUCCESS:
            raise ScuError(status_message(peer, code=code, answer=answer, table=statuses))
        return


def association_failure(
    *,
    server: DicomServer,
    timeout: float,
    waited: float,
    rejection: A_ASSOCIATE_RJ | None = None,
) -> str:
    """Why the association was not established, in words.

    ``rejection``: the A-ASSOCIATE-RJ PDU received (``RejectSeen``), whether or not
    pynetdicom reported it as ``assoc.is_rejected``.
    """
    peer = peer_name(server)
    if rejection is not None:
        permanence = "permanently" if rejection.result == 0x01 else "for now"
        reason = REJECT_REASONS.get((rejection.source, rejection.reason_diagnostic))
        return f"{peer} rejected the association {permanence}: {reason or 'unknown reason'}"
    # pynetdicom does not tell a refused connection from silence: ask the socket.
    try:
        with socket.create_connection((server.host, server.port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        return f"{peer} refused the connection: nothing listens on that port"
    except TimeoutError:
        return f"{peer} did not answer within {timeout:g} s"
    except OSError as exc:
        return f"{peer} cannot be reached: {exc.strerror or exc}"
    if server.use_tls:
        problem = tls_failure(server, timeout=timeout)
        if problem:
            return problem
    if waited >= timeout:
        return f"{peer} did not answer the association request within {timeout:g} s"
    return f"{peer} aborted or closed the connection during the association request"


def tls_failure(server: DicomServer, *, timeout: float) -> str | None:
    """Why TLS with ``server`` fails, in words; None when a handshake works.

    pynetdicom logs the TLS error and reports only a failed association: shake hands again
    to say why. With TLS 1.3 a server refuses our certificate after the handshake, in an
    alert: a short read catches it (a server waiting for our A-ASSOCIATE-RQ just times out).
    """
    peer = peer_name(server)
    try:
        context = tls.client_context(server)
        with (
            socket.create_connection((server.host, server.port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server.host) as sock,
        ):
            sock.settimeout(min(timeout, 1.0))
            sock.recv(1)
    except ssl.SSLCertVerificationError as exc:
        return f"{peer}'s TLS certificate is not trusted: {exc.verify_message}"
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        words = tls.CALLING_REASONS.get(reason)
        return f"TLS with {peer} failed ({reason})" + (f": {words}" if words else "")
    except OSError:
        return None  # the read timed out (or the peer closed): the handshake itself worked
    return None


# --- C-ECHO ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    round_trip_ms: float | None
    error: str = ""


def echo(server: DicomServer, *, timeout: float | None = 10) -> EchoResult:
    """ "Test connection": associate, C-ECHO, release; the round trip or why it failed."""
    ae = new_ae(server, timeout)
    ae.add_requested_context(Verification)
    started = time.monotonic()
    try:
        assoc = associate(ae, server)
    except ScuError as exc:
        return EchoResult(False, None, str(exc))
    try:
        answer = assoc.send_c_echo()
        elapsed = (time.monotonic() - started) * 1000
        code = answer.get("Status") if answer else None
        if code is None:
            return EchoResult(False, None, f"{peer_name(server)} did not answer the C-ECHO")
        if code != status.SUCCESS:
            return EchoResult(False, None, f"{peer_name(server)} answered C-ECHO with 0x{code:04X}")
    finally:
        if assoc.is_established:
            assoc.release()
    return EchoResult(True, round(elapsed, 1))
