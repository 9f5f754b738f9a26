"""Audit trail forwarded to syslog (patients/syslog.py): real collectors on loopback, over
UDP (one datagram per event) and over TLS (octet-counted frames, the collector's certificate
verified, ours presented), each message RFC 5424 with a DICOM audit message that validates."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import rnc2rng
from django.core.management import CommandError, call_command
from lxml import etree

from dicomnet.net import tls_dev
from patients import audit, syslog
from patients.models import AuditEvent, AuditForwarding, Patient

SCHEMA = Path(audit.__file__).parent / "schema" / "dicom-audit-message.rnc"
HEADER = re.compile(
    rb"<(?P<pri>\d+)>1 (?P<stamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>\S+) "
    rb"nexrel - IHE\+RFC-3881 - \xef\xbb\xbf(?P<msg><\?xml.*)",
    re.S,
)


class UdpCollector:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.url = f"udp://127.0.0.1:{self.sock.getsockname()[1]}"

    def receive(self, count: int) -> list[bytes]:
        return [self.sock.recv(65535) for _ in range(count)]


class TlsCollector:
    """Accepts one TLS connection at a time (client certificate required) and reads its
    octet-counted frames until the sender closes."""

    def __init__(self, certificates: tls_dev.DevCertificates) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificates.server_certificate, certificates.server_key)
        self.context.load_verify_locations(certificates.ca_certificate)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.listening = socket.create_server(("127.0.0.1", 0))
        self.listening.settimeout(10)
        self.url = f"tls://localhost:{self.listening.getsockname()[1]}"
        self.frames: list[bytes] = []
        self.peer_names: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            raw, _ = self.listening.accept()
            with self.context.wrap_socket(raw, server_side=True) as conn:
                subject = dict(x[0] for x in conn.getpeercert()["subject"])
                self.peer_names.append(subject["commonName"])
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                while data:
                    length, _, rest = data.partition(b" ")
                    self.frames.append(rest[: int(length)])
                    data = rest[int(length) :]


@pytest.fixture(scope="module")
def relax_ng() -> etree.RelaxNG:
    rng = rnc2rng.dumps(rnc2rng.load(str(SCHEMA)))
    return etree.RelaxNG(etree.fromstring(rng.encode()))


@pytest.fixture
def certificates(tmp_path: Path, settings) -> Iterator[tls_dev.DevCertificates]:
    tls_dev.ensure_dev_certificates(tmp_path / "tls", hosts=["localhost", "127.0.0.1"])
    files = tls_dev.DevCertificates(tmp_path / "tls")
    settings.AUDIT_SYSLOG_CA = str(files.ca_certificate)
    settings.DICOM_TLS_CERT = str(files.client_certificate)
    settings.DICOM_TLS_KEY = str(files.client_key)
    yield files


def _events(practice, n: int) -> list[AuditEvent]:
    cote = Patient.objects.get(practice=practice, chart_number="1001")  # Zoé Côté
    return [
        audit.record(
            "110110",
            action="R",
            what=f"test_syslog_{i}",
            practice_id=practice.pk,
            patient=cote,
            outcome=AuditEvent.Outcome.SUCCESS if i % 2 == 0 else AuditEvent.Outcome.MINOR_FAILURE,
        )
        for i in range(n)
    ]


def _check(message: bytes, event: AuditEvent, relax_ng: etree.RelaxNG) -> None:
    match = HEADER.fullmatch(message)
    assert match, message[:200]
    severity = 5 if event.outcome == AuditEvent.Outcome.SUCCESS else 4
    assert int(match["pri"]) == 10 * 8 + severity
    xml = etree.fromstring(match["msg"])
    assert relax_ng.validate(xml), relax_ng.error_log
    assert "Côté" in etree.tostring(xml, encoding="unicode")


def test_the_scheduled_task_forwards_each_event_once_over_udp(practice, settings, relax_ng):
    collector = UdpCollector()
    settings.AUDIT_SYSLOG_URL = collector.url
    events = _events(practice, 3)
    assert syslog.forward_new_events() >= 3
    messages = collector.receive(AuditEvent.objects.count())  # in order, on loopback
    for message, event in zip(messages[-3:], events, strict=True):
        _check(message, event, relax_ng)
    mark = AuditForwarding.objects.get(destination=collector.url)
    assert mark.last_event_id == AuditEvent.objects.latest("pk").pk and not mark.last_error
    # Nothing new: nothing sent again.
    assert syslog.forward_new_events() == 0


def test_a_collector_down_keeps_the_mark_and_the_next_run_catches_up(
    practice, settings, certificates, caplog
):
    settings.AUDIT_SYSLOG_URL = "tls://localhost:1"  # nothing listens there
    _events(practice, 2)
    assert syslog.forward_new_events() == 0
    mark = AuditForwarding.objects.get(destination="tls://localhost:1")
    assert mark.last_event_id == 0 and mark.last_error
    assert "audit forwarding to tls://localhost:1 failed after 0 events" in caplog.text

    collector = TlsCollector(certificates)
    settings.AUDIT_SYSLOG_URL = collector.url
    total = AuditEvent.objects.count()
    assert syslog.forward_new_events() == total
    collector.thread.join(10)
    assert len(collector.frames) == total
    assert collector.peer_names == ["nexrel-dev-client"]  # our certificate was presented


def test_export_audit_sends_over_tls_and_validates(practice, certificates, relax_ng):
    events = _events(practice, 2)
    collector = TlsCollector(certificates)
    call_command("export_audit", "--format", "syslog", "--output", collector.url)
    collector.thread.join(10)
    assert len(collector.frames) == AuditEvent.objects.count()
    for frame, event in zip(collector.frames[-2:], events, strict=True):
        _check(frame, event, relax_ng)


def test_a_collector_with_an_untrusted_certificate_is_refused(
    practice, certificates, settings, tmp_path
):
    collector = TlsCollector(certificates)
    other = tmp_path / "other"
    tls_dev.ensure_dev_certificates(other, hosts=["localhost"])
    settings.AUDIT_SYSLOG_CA = str(tls_dev.DevCertificates(other).ca_certificate)
    _events(practice, 1)
    with pytest.raises(CommandError, match="certificate verify failed"):
        call_command("export_audit", "--format", "syslog", "--output", collector.url)


def test_a_bad_destination_is_named():
    with pytest.raises(CommandError, match="expected udp://, tcp:// or tls://"):
        call_command("export_audit", "--format", "syslog", "--output", "http://collector")
