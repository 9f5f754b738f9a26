"""A local certificate authority for trying DICOM TLS: ``make run`` (``manage.py
make_dev_certs``) and the tests make their CA, server and client certificates with it.

Not for production: the keys are written unencrypted, and whoever holds ``ca.key`` can
make certificates every Nexrel trusting this CA accepts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# RSA: what dental devices' TLS stacks accept most widely (ECDSA is not always there).
KEY_SIZE = 2048
ORGANISATION = "Nexrel (development)"


@dataclass(frozen=True)
class Credentials:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def sha256(self) -> str:
        """The certificate's SHA-256 fingerprint, as ``DicomServer.tls_certificate_sha256``."""
        return hashlib.sha256(self.certificate.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def subject(self) -> str:
        """The certificate's subject, as ``DicomServer.tls_certificate_subject``."""
        return self.certificate.subject.rfc4514_string()

    def write(self, certificate_path: Path, key_path: Path) -> None:
        certificate_path.write_bytes(self.certificate_pem())
        # Created 0600, never readable by others even for a moment.
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(self.key_pem())

    @classmethod
    def read(cls, certificate_path: Path, key_path: Path) -> Credentials:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_path}: not an RSA key")
        return cls(key, x509.load_pem_x509_certificate(certificate_path.read_bytes()))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def new_authority(common_name: str = "Nexrel development CA", *, days: int = 3650) -> Credentials:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    now = dt.datetime.now(dt.UTC)
    name = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Credentials(key, certificate)


def issue(
    authority: Credentials, common_name: str, *, hosts: Sequence[str] = (), days: int = 825
) -> Credentials:
    """A certificate signed by ``authority``, good as a TLS server (for ``hosts``) and client:
    a DICOM device both calls and is called with one certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_san(host) for host in hosts]), critical=False
        )
    return Credentials(key, builder.sign(authority.key, hashes.SHA256()))


@dataclass(frozen=True)
class DevCertificates:
    """The files of ``make run``'s TLS: a CA, the listener's certificate, one for a client."""

    directory: Path

    @property
    def ca_certificate(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_certificate(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_certificate(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"


def ensure_dev_certificates(directory: Path, *, hosts: Sequence[str]) -> list[Path]:
    """Make what is missing in ``directory``; the files written (none when all were there).

    1. The CA, unless both its files are there (a new CA replaces every certificate).
    2. The server certificate, for ``hosts``, and a client certificate, each if missing.
    """
    files = DevCertificates(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if files.ca_certificate.exists() and files.ca_key.exists():
        authority = Credentials.read(files.ca_certificate, files.ca_key)
        renew = False
    else:
        authority = new_authority()
        authority.write(files.ca_certificate, files.ca_key)
        written += [files.ca_certificate, files.ca_key]
        renew = True
    leaves = [
        (files.server_certificate, files.server_key, "nexrel-dev-listener", hosts),
        (files.client_certificate, files.client_key, "nexrel-dev-client", ()),
    ]
    for certificate, key, common_name, names in leaves:
        if renew or not (certificate.exists() and key.exists()):
            issue(authority, common_name, hosts=names).write(certificate, key)
            written += [certificate, key]
    return written
