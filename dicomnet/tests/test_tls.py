"""The TLS contexts (BCP 195), the listener's handshake and the certificate pins, tested
directly: real OpenSSL handshakes over socket pairs, certificates from ``tls_dev``."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from dicomnet.models import DicomServer
from dicomnet.net import tls
from dicomnet.net.tls_dev import Credentials, issue, new_authority


@dataclass(frozen=True)
class Pki:
    ca: Credentials
    server: Credentials
    client: Credentials
    ca_file: Path
    server_files: tuple[str, str]  # certificate, key
    client_files: tuple[str, str]


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = new_authority("Test CA")
    server = issue(ca, "listener", hosts=["localhost", "127.0.0.1"])
    client = issue(ca, "pano-1")
    ca.write(root / "ca.crt", root / "ca.key")
    server.write(root / "server.crt", root / "server.key")
    client.write(root / "client.crt", root / "client.key")
    return Pki(
        ca,
        server,
        client,
        root / "ca.crt",
        (str(root / "server.crt"), str(root / "server.key")),
        (str(root / "client.crt"), str(root / "client.key")),
    )


def device(**fields) -> DicomServer:
    """An unsaved device: the contexts and pins read only its fields."""
    return DicomServer(
        name="Pano", ae_title="PANO", host=fields.pop("host", "pano.local"), **fields
    )


# --- the profile ---------------------------------------------------------------------------


def test_server_context_is_tls_1_2_and_up_with_bcp195_suites_only(pki):
    context = tls.server_context(*pki.server_files)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # no CA given: no client certificate asked
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12, "some TLS 1.2 suites remain"
    for cipher in tls12:
        assert cipher["kea"] == "kx-ecdhe", f"{cipher['name']}: not ECDHE key exchange"
        assert cipher["aead"], f"{cipher['name']}: not AEAD (CBC)"
        assert "CBC" not in cipher["description"] and "SHA1" not in cipher["description"]
    assert not any(c["name"].startswith(("AES", "DES", "RC4")) for c in context.get_ciphers())


def test_server_context_with_a_ca_requires_client_certificates(pki):
    context = tls.server_context(*pki.server_files, ca=str(pki.ca_file))
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_client_context_checks_names_not_ip_addresses(pki, settings):
    settings.DICOM_TLS_CA, settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY = "", "", ""
    by_name = tls.client_context(device(host="pano.local"))
    by_ip = tls.client_context(device(host="192.168.1.20"))
    for context in (by_name, by_ip):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert all(c["aead"] and c["kea"] in ("kx-ecdhe", "kx-any") for c in context.get_ciphers())
    assert by_name.check_hostname and not by_ip.check_hostname


def test_client_context_trusts_the_device_ca_else_dicom_tls_ca(pki, settings):
    settings.DICOM_TLS_CA = str(pki.ca_file)
    settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY = "", ""
    own = new_authority("Device vendor CA")
    with_own = tls.client_context(device(tls_ca_certificates=own.certificate_pem().decode()))
    assert [c["subject"][1][0][1] for c in with_own.get_ca_certs()] == ["Device vendor CA"]
    clinic = tls.client_context(device())
    assert [c["subject"][1][0][1] for c in clinic.get_ca_certs()] == ["Test CA"]


def handshake_pair(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, *, hostname: str
) -> tuple[ssl.SSLSocket | tls.HandshakeFailed, ssl.SSLSocket | Exception]:
    """A real handshake over a socket pair: the listener's side by ``server_handshake``."""
    ours, theirs = socket.socketpair()
    result: dict[str, object] = {}

    def client() -> None:
        try:
            result["client"] = client_context.wrap_socket(theirs, server_hostname=hostname)
        except Exception as exc:
            result["client"] = exc
            theirs.close()

    thread = threading.Thread(target=client)
    thread.start()
    try:
        server: ssl.SSLSocket | tls.HandshakeFailed = tls.server_handshake(
            server_context, ours, timeout=5
        )
    except tls.HandshakeFailed as exc:
        server = exc
    thread.join(timeout=10)
    return server, result["client"]  # type: ignore[return-value]


def test_mutual_handshake_and_the_peer_certificate(pki, settings):
    settings.DICOM_TLS_CA = str(pki.ca_file)
    settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY = pki.client_files
    server, client = handshake_pair(
        tls.server_context(*pki.server_files, ca=str(pki.ca_file)),
        tls.client_context(device(host="localhost")),
        hostname="localhost",
    )
    assert isinstance(server, ssl.SSLSocket), server
    assert isinstance(client, ssl.SSLSocket), client
    assert server.version() in ("TLSv1.2", "TLSv1.3")
    assert server.gettimeout() is None, "the socket's own timeout is back after the handshake"
    seen = tls.peer_certificate(server)
    assert seen is not None
    assert (seen.sha256, seen.subject_text) == (pki.client.sha256, pki.client.subject)
    server.close()
    client.close()


def test_a_client_without_certificate_fails_the_handshake_when_a_ca_is_set(pki, settings):
    settings.DICOM_TLS_CA = str(pki.ca_file)
    settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY = "", ""
    server, _ = handshake_pair(
        tls.server_context(*pki.server_files, ca=str(pki.ca_file)),
        tls.client_context(device(host="localhost")),
        hostname="localhost",
    )
    assert isinstance(server, tls.HandshakeFailed)
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in str(server)


def test_a_client_limited_to_tls_1_1_is_refused(pki):
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    server, client = handshake_pair(
        tls.server_context(*pki.server_files), old, hostname="localhost"
    )
    assert isinstance(server, tls.HandshakeFailed)
    assert "UNSUPPORTED_PROTOCOL" in str(server) and "older than 1.2" in str(server)
    assert isinstance(client, ssl.SSLError)


def test_a_silent_client_times_out_and_is_closed(pki):
    ours, theirs = socket.socketpair()
    started = time.monotonic()
    with pytest.raises(tls.HandshakeFailed, match="no TLS handshake within 1 s"):
        tls.server_handshake(tls.server_context(*pki.server_files), ours, timeout=1)
    assert 0.9 < time.monotonic() - started < 3
    assert theirs.recv(1) == b"", "the listener's side was closed"
    theirs.close()


def test_plain_dicom_is_not_tls(pki):
    ours, theirs = socket.socketpair()
    theirs.sendall(bytes.fromhex("01000000004c0001") + b"\x00" * 80)  # an A-ASSOCIATE-RQ start
    with pytest.raises(tls.HandshakeFailed, match="WRONG_VERSION_NUMBER.*plain DICOM"):
        tls.server_handshake(tls.server_context(*pki.server_files), ours, timeout=5)
    theirs.close()


# --- pins ----------------------------------------------------------------------------------


@pytest.fixture
def presented(pki) -> tls.PeerCertificate:
    from cryptography.hazmat.primitives import serialization

    return tls.PeerCertificate.from_der(
        pki.client.certificate.public_bytes(serialization.Encoding.DER)
    )


def test_no_pin_accepts_any_certificate_or_none(presented):
    assert tls.pin_mismatch(device(), presented) is None
    assert tls.pin_mismatch(device(), None) is None


def test_fingerprint_pin(pki, presented):
    colons = ":".join(pki.client.sha256[i : i + 2] for i in range(0, 64, 2)).upper()
    assert tls.pin_mismatch(device(tls_certificate_sha256=colons), presented) is None
    other = issue(pki.ca, "pano-1").sha256  # same subject, another certificate
    reason = tls.pin_mismatch(device(tls_certificate_sha256=other), presented)
    assert reason and pki.client.sha256 in reason and other in reason
    assert "presented none" in (tls.pin_mismatch(device(tls_certificate_sha256=other), None) or "")


def test_subject_pin(presented):
    assert presented.subject_text == "CN=pano-1,O=Nexrel (development)"
    for same in (
        "CN=pano-1,O=Nexrel (development)",  # RFC 4514
        "CN=pano-1, O=Nexrel (development)",  # as people type it
        "O = Nexrel (development), CN = pano-1",  # as `openssl x509 -subject` prints it
    ):
        assert tls.pin_mismatch(device(tls_certificate_subject=same), presented) is None, same
    wrong = "CN=pano-2,O=Nexrel (development)"
    reason = tls.pin_mismatch(device(tls_certificate_subject=wrong), presented)
    assert reason and "CN=pano-1" in reason and "pano-2" in reason


def test_device_validation_of_the_tls_fields(practice, pki):
    server = DicomServer(
        practice=practice,
        name="Pano",
        ae_title="PANO",
        tls_certificate_sha256="AB:CD",
        tls_certificate_subject="not a name",
        tls_ca_certificates="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n",
    )
    with pytest.raises(ValidationError) as raised:
        server.full_clean()
    assert set(raised.value.message_dict) == {
        "tls_certificate_sha256",
        "tls_certificate_subject",
        "tls_ca_certificates",
    }
    colons = ":".join(pki.client.sha256[i : i + 2] for i in range(0, 64, 2)).upper()
    server.tls_certificate_sha256 = colons
    server.tls_certificate_subject = pki.client.subject
    server.tls_ca_certificates = pki.ca.certificate_pem().decode()
    server.full_clean()
    assert server.tls_certificate_sha256 == pki.client.sha256, "stored as lowercase hex"


def test_listener_context_names_the_missing_file(settings, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    settings.DICOM_TLS_CERT = str(tmp_path / "missing.crt")
    settings.DICOM_TLS_KEY = str(tmp_path / "missing.key")
    settings.DICOM_TLS_CA = ""
    with pytest.raises(ImproperlyConfigured, match="missing.crt"):
        tls.listener_context()
