"""DICOM over TLS: the BCP 195 profile (PS3.15 B.9), its contexts, and certificate pins.

- ``server_context``: the listener's side; with a CA, callers must present a certificate it
  signed (mutual TLS);
- ``client_context``: Nexrel calling a device (``DicomServer.use_tls``), verifying it;
- ``server_handshake``: the listener's handshake, run in the connection's own thread with a
  timeout (``hardening.TlsAssociationServer``, docs/security.md);
- ``pin_mismatch``: whether a device's certificate is the one its ``DicomServer`` pins.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from dicomnet.models import DicomServer

# BCP 195 (RFC 9325 4.2) for TLS 1.2: forward secrecy (ECDHE) and AEAD (AES-GCM,
# ChaCha20-Poly1305) only, so no RSA key exchange, no CBC, no SHA-1 MAC. TLS 1.3's suites
# all qualify and are not set by this string.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

# OpenSSL's reasons for the handshake failures a person can fix, in words.
HANDSHAKE_REASONS = {
    "WRONG_VERSION_NUMBER": "not TLS; plain DICOM sent to the TLS port?",
    "HTTP_REQUEST": "not TLS but an HTTP request",
    "UNSUPPORTED_PROTOCOL": "the client offers only TLS versions older than 1.2",
    "NO_SHARED_CIPHER": "no BCP 195 cipher suite in common with the client",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the client sent no certificate, and DICOM_TLS_CA "
    "requires one",
    "CERTIFICATE_VERIFY_FAILED": "the client's certificate is not signed by DICOM_TLS_CA",
}
# The same, when we call a device (``association.tls_failure``).
CALLING_REASONS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "it requires our certificate: set DICOM_TLS_CERT "
    "and DICOM_TLS_KEY",
    "SSLV3_ALERT_BAD_CERTIFICATE": "it refused our certificate (DICOM_TLS_CERT)",
    "TLSV1_ALERT_UNKNOWN_CA": "it does not trust the authority of our certificate (DICOM_TLS_CERT)",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "no TLS version or cipher suite in common (BCP 195: "
    "TLS 1.2 or 1.3, ECDHE with AES-GCM or ChaCha20)",
    "TLSV1_ALERT_PROTOCOL_VERSION": "it offers only TLS versions older than 1.2",
    "WRONG_VERSION_NUMBER": "it does not speak TLS on this port",
}


def _bcp195(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    # BCP 195: no compression (CRIME), no renegotiation.
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def server_context(cert: str, key: str, ca: str | None = None) -> ssl.SSLContext:
    """The listener's context: our certificate; with ``ca``, a client certificate it signed
    is required."""
    context = _bcp195(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.load_cert_chain(cert, key)
    if ca:
        context.load_verify_locations(cafile=ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def listener_context() -> ssl.SSLContext:
    """``server_context`` from the settings; a file that can't be read stops the start."""
    if not (settings.DICOM_TLS_CERT and settings.DICOM_TLS_KEY):
        raise ImproperlyConfigured("a DICOM TLS port needs DICOM_TLS_CERT and DICOM_TLS_KEY")
    try:
        return server_context(
            settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY, settings.DICOM_TLS_CA or None
        )
    except (OSError, ssl.SSLError) as exc:
        raise ImproperlyConfigured(
            f"DICOM TLS: cannot load DICOM_TLS_CERT {settings.DICOM_TLS_CERT!r}, DICOM_TLS_KEY "
            f"{settings.DICOM_TLS_KEY!r} or DICOM_TLS_CA {settings.DICOM_TLS_CA!r}: {exc}"
        ) from exc


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def client_context(server: DicomServer) -> ssl.SSLContext:
    """Calling ``server`` over TLS: verify its certificate, present ours.

    1. Trust the device's own CA certificates when it has some, else DICOM_TLS_CA (the
       clinic's CA, which signs the listener's callers too), else the system's store.
    2. A host name must match the certificate; a device known by its IP address (their
       certificates seldom name it) is verified by its chain, and by its pin when it has one.
    3. Our certificate (DICOM_TLS_CERT/KEY) is presented, for peers requiring mutual TLS.
    """
    context = _bcp195(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))  # CERT_REQUIRED
    if server.tls_ca_certificates.strip():
        context.load_verify_locations(cadata=server.tls_ca_certificates)
    elif settings.DICOM_TLS_CA:
        context.load_verify_locations(cafile=settings.DICOM_TLS_CA)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = not is_ip_address(server.host)
    if settings.DICOM_TLS_CERT:
        context.load_cert_chain(settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY)
    return context


def tls_args(server: DicomServer) -> tuple[ssl.SSLContext, str] | None:
    """pynetdicom's ``tls_args`` for calling ``server``; None when it is called in the clear."""
    if not server.use_tls:
        return None
    return client_context(server), server.host


# --- the listener's handshake -----------------------------------------------------------


class HandshakeFailed(Exception):
    """The TLS handshake with a caller failed; the message says why, in words."""

    def __init__(self, reason: str, *, closed_early: bool = False) -> None:
        super().__init__(reason)
        self.closed_early = closed_early  # a port probe, not an attack or a misconfiguration


def server_handshake(
    context: ssl.SSLContext, sock: socket.socket, *, timeout: float
) -> ssl.SSLSocket:
    """The TLS side of an accepted connection, its handshake done within ``timeout`` seconds.

    The socket's own timeout is restored afterwards. On failure the connection is closed
    and ``HandshakeFailed`` says why.
    """
    previous = sock.gettimeout()
    tls_sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    try:
        tls_sock.settimeout(timeout)
        tls_sock.do_handshake()
        tls_sock.settimeout(previous)
    except TimeoutError:
        tls_sock.close()
        raise HandshakeFailed(f"no TLS handshake within {timeout:g} s") from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError) as exc:
        tls_sock.close()
        raise HandshakeFailed(
            f"closed the connection during the TLS handshake ({exc.__class__.__name__})",
            closed_early=True,
        ) from None
    except ssl.SSLError as exc:
        tls_sock.close()
        reason = str(exc.reason or exc)
        words = HANDSHAKE_REASONS.get(reason)
        raise HandshakeFailed(
            f"TLS handshake failed ({reason})" + (f": {words}" if words else "")
        ) from None
    except OSError as exc:
        tls_sock.close()
        raise HandshakeFailed(f"TLS handshake failed: {exc}") from None
    return tls_sock


# --- certificate pins ---------------------------------------------------------------------


@dataclass(frozen=True)
class PeerCertificate:
    subject: x509.Name
    sha256: str  # lowercase hex, no separators

    @classmethod
    def from_der(cls, der: bytes) -> PeerCertificate:
        certificate = x509.load_der_x509_certificate(der)
        return cls(certificate.subject, hashlib.sha256(der).hexdigest())

    @property
    def subject_text(self) -> str:
        return self.subject.rfc4514_string()


def peer_certificate(sock: object) -> PeerCertificate | None:
    """The certificate the peer presented on ``sock``; None over plain TCP or without one."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    der = sock.getpeercert(binary_form=True)
    return PeerCertificate.from_der(der) if der else None


def normalise_fingerprint(value: str) -> str:
    """``AB:CD:...`` (as openssl prints it) or ``abcd...`` to lowercase hex."""
    return value.replace(":", "").replace(" ", "").strip().lower()


def is_fingerprint(value: str) -> bool:
    digits = normalise_fingerprint(value)
    return len(digits) == 64 and all(c in "0123456789abcdef" for c in digits)


def parse_subject(value: str) -> x509.Name:
    """A subject as RFC 4514 text (``CN=pano-1,O=Clinique``) or as openssl prints it
    (``O = Clinique, CN = pano-1``); ValueError when it is neither."""
    # Spaces around the separators are how people (and openssl) write it, not part of a value.
    return x509.Name.from_rfc4514_string(re.sub(r"(?<!\\)\s*([,+=])\s*", r"\1", value.strip()))


def same_subject(a: x509.Name, b: x509.Name) -> bool:
    """The same attributes, in any order: RFC 4514 text lists them most specific first,
    openssl most general first."""
    return sorted((n.oid.dotted_string, str(n.value)) for n in a) == sorted(
        (n.oid.dotted_string, str(n.value)) for n in b
    )


def has_pin(server: DicomServer) -> bool:
    return bool(server.tls_certificate_subject.strip() or server.tls_certificate_sha256.strip())


def pin_mismatch(server: DicomServer, certificate: PeerCertificate | None) -> str | None:
    """Why ``certificate`` is not the one ``server`` pins; None when it is, or nothing is
    pinned."""
    if not has_pin(server):
        return None
    if certificate is None:
        return "its certificate is pinned, but it presented none (not TLS, or no certificate)"
    fingerprint = normalise_fingerprint(server.tls_certificate_sha256)
    if fingerprint and certificate.sha256 != fingerprint:
        return (
            f"its certificate's SHA-256 fingerprint {certificate.sha256} is not the pinned "
            f"{fingerprint}"
        )
    subject = server.tls_certificate_subject.strip()
    try:
        pinned = parse_subject(subject) if subject else None
    except ValueError:
        return f"its pinned subject {subject!r} is not an RFC 4514 name"
    if pinned is not None and not same_subject(certificate.subject, pinned):
        return (
            f"its certificate's subject {certificate.subject_text!r} is not the pinned {subject!r}"
        )
    return None
