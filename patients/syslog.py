"""The audit trail forwarded to a syslog collector (an audit record repository, IHE ATNA).

Each event goes as one RFC 5424 message whose MSG is its DICOM audit message (PS3.15 A.5,
``atna.audit_message_xml``): over UDP (RFC 5426, one datagram each), or over TCP or TLS
(RFC 5425: octet-counted frames, TLS 1.2+ with the collector's certificate verified).

``AUDIT_SYSLOG_URL`` (``udp://host:514``, ``tcp://host:601``, ``tls://host:6514``) turns the
forwarding on: ``forward_new_events``, scheduled every minute, sends the events after the
last one the collector got (``AuditForwarding``), in order, and moves that mark after each
batch. An event is sent at least once: if the collector fails mid-batch, the batch is sent
again from the mark, so the collector may see an event twice (its id is in the message).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from patients.atna import audit_message_xml
from patients.models import AuditEvent, AuditForwarding

log = logging.getLogger("patients.syslog")

# PRI: facility 10 (security/authorisation), severity 5 (notice), or 4 (warning) when
# the event's outcome is a failure, as IHE ITI TF-2 3.20.4.1.2 and RFC 5424 6.2.1 give.
FACILITY = 10
APP_NAME = "nexrel"
MSGID = "IHE+RFC-3881"  # what IHE ATNA collectors expect, for the DICOM format too
UDP_MAX = 65507  # one datagram; a bigger message is truncated by RFC 5426's rule, so refused
BATCH = 500


@dataclass(frozen=True)
class Destination:
    transport: str  # udp, tcp or tls
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"{self.transport}://{self.host}:{self.port}"


DEFAULT_PORTS = {"udp": 514, "tcp": 601, "tls": 6514}


def parse_destination(url: str) -> Destination:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ImproperlyConfigured(
            f"AUDIT_SYSLOG_URL {url!r}: expected udp://, tcp:// or tls://host[:port]"
        )
    return Destination(parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme])


def format_message(event: AuditEvent, *, hostname: str | None = None) -> bytes:
    """One RFC 5424 message: HEADER, no structured data, the audit message as MSG."""
    severity = 5 if event.outcome == AuditEvent.Outcome.SUCCESS else 4
    stamp = event.at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    host = (hostname or socket.gethostname() or "-")[:255]
    stamp = stamp.replace("+00:00", "Z")
    header = f"<{FACILITY * 8 + severity}>1 {stamp} {host} {APP_NAME} - {MSGID} -"
    return header.encode("ascii", "replace") + b" \xef\xbb\xbf" + audit_message_xml(event)


class Sender:
    """One connection to the collector (a socket per ``Sender``), closed by ``close``."""

    def __init__(self, destination: Destination, *, timeout: float = 10.0) -> None:
        self.destination = destination
        address = (destination.host, destination.port)
        if destination.transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
            return
        raw = socket.create_connection(address, timeout=timeout)
        if destination.transport == "tls":
            context = tls_context()
            self.sock = context.wrap_socket(raw, server_hostname=destination.host)
        else:
            self.sock = raw

    def send(self, message: bytes) -> None:
        if self.destination.transport == "udp":
            if len(message) > UDP_MAX:
                raise ValueError(f"{len(message)} bytes do not fit a UDP datagram")
            self.sock.send(message)
        else:  # RFC 5425 / RFC 6587 octet counting: "LEN SP MSG"
            self.sock.sendall(str(len(message)).encode() + b" " + message)

    def close(self) -> None:
        """Over TCP, end with a FIN and wait for the collector to close: bytes left unread
        (TLS 1.3 session tickets) would make ``close`` send a RST, and a RST can discard
        frames the collector has not read yet."""
        if self.destination.transport != "udp":
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
                while self.sock.recv(4096):
                    pass
        self.sock.close()


def tls_context() -> ssl.SSLContext:
    """Verify the collector against AUDIT_SYSLOG_CA (or the system's CAs); TLS 1.2 or later.
    Present our own certificate (DICOM_TLS_CERT) when the collector asks for one."""
    context = ssl.create_default_context(cafile=settings.AUDIT_SYSLOG_CA or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.DICOM_TLS_CERT and settings.DICOM_TLS_KEY:
        context.load_cert_chain(Path(settings.DICOM_TLS_CERT), Path(settings.DICOM_TLS_KEY))
    return context


def send_events(events: Iterable[AuditEvent], destination: Destination) -> int:
    """Send ``events`` in order over one connection; returns how many were sent."""
    sender = Sender(destination)
    count = 0
    try:
        for event in events:
            sender.send(format_message(event))
            count += 1
    finally:
        sender.close()
    return count


def forward_new_events() -> int:
    """The scheduled task: send what the collector has not had yet. Returns the count sent.

    1. Nothing to do without AUDIT_SYSLOG_URL.
    2. Read the mark (the last event id sent to this destination), take the next batch.
    3. Send it; on failure log why and leave the mark, so the next run sends it again.
    4. Move the mark past the batch; repeat until none is left.
    """
    if not settings.AUDIT_SYSLOG_URL:
        return 0
    destination = parse_destination(settings.AUDIT_SYSLOG_URL)
    mark, _ = AuditForwarding.objects.get_or_create(destination=destination.url)
    sent = 0
    while True:
        batch = list(AuditEvent.objects.filter(pk__gt=mark.last_event_id).order_by("pk")[:BATCH])
        if not batch:
            return sent
        try:
            sent += send_events(batch, destination)
        except (OSError, ValueError) as exc:
            log.warning(
                "audit forwarding to %s failed after %d events: %s", destination.url, sent, exc
            )
            AuditForwarding.objects.filter(pk=mark.pk).update(last_error=str(exc)[:500])
            return sent
        mark.last_event_id, mark.last_sent_at, mark.last_error = batch[-1].pk, timezone.now(), ""
        mark.save(update_fields=["last_event_id", "last_sent_at", "last_error"])
