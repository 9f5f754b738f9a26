"""DICOM TLS against real peers: DCMTK echoscu/storescu/storescp with ``+tls``, openssl
s_client, raw sockets; the listener a real ``dicom_listener`` subprocess serving TLS."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dicomnet.models import DicomInstance, DicomServer, RefusedAssociation
from dicomnet.net import association
from dicomnet.net.tls_dev import Credentials, issue, new_authority
from tests.dicom_samples import ingest_processed, intraoral, write
from tests.fixtures import free_port, peer_server, wait_until
from tests.peers import _start, _wait_ready, stop_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("echoscu"), reason="DCMTK not installed"),
]

HANDSHAKE_TIMEOUT = 3  # s: short, so the silent-client test sees it expire


@dataclass(frozen=True)
class Files:
    certificate: Path
    key: Path
    credentials: Credentials


@dataclass(frozen=True)
class Pki:
    ca: Path
    ca_credentials: Credentials
    listener: Files
    client: Files  # signed by the CA
    rogue_ca: Credentials  # trusted by nobody
    rogue_client: Files  # signed by the rogue CA


def _files(root: Path, name: str, credentials: Credentials) -> Files:
    files = Files(root / f"{name}.crt", root / f"{name}.key", credentials)
    credentials.write(files.certificate, files.key)
    return files


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    root = tmp_path_factory.mktemp("tls")
    ca = new_authority("Clinic CA")
    ca.write(root / "ca.crt", root / "ca.key")
    rogue = new_authority("Rogue CA")
    return Pki(
        ca=root / "ca.crt",
        ca_credentials=ca,
        listener=_files(root, "listener", issue(ca, "nexrel", hosts=["localhost", "127.0.0.1"])),
        client=_files(root, "client", issue(ca, "pano-1")),
        rogue_ca=rogue,
        rogue_client=_files(root, "rogue", issue(rogue, "pano-1")),
    )


def tls_env(pki: Pki) -> dict[str, str]:
    return {
        "DICOM_TLS_CERT": str(pki.listener.certificate),
        "DICOM_TLS_KEY": str(pki.listener.key),
        "DICOM_TLS_CA": str(pki.ca),
        "DICOM_TLS_HANDSHAKE_TIMEOUT": str(HANDSHAKE_TIMEOUT),
    }


@dataclass
class TlsListener:
    proc: object
    port: int  # plain
    tls_port: int

    def output(self) -> str:
        return self.proc.output()  # type: ignore[attr-defined]


@pytest.fixture
def tls_listener(listener_factory, pki) -> TlsListener:
    tls_port = free_port()
    proc, port = listener_factory(env=tls_env(pki), tls_port=tls_port)
    return TlsListener(proc, port, tls_port)


def echoscu_tls(
    port: int, client: Files | None, pki: Pki, *, calling: str = "PLANMECA"
) -> subprocess.CompletedProcess:
    """echoscu +tls with ``client``'s certificate (None: anonymous TLS), trusting the CA."""
    tls = ["+tls", str(client.key), str(client.certificate)] if client else ["+tla"]
    return subprocess.run(
        ["echoscu", "-v", *tls, "+cf", str(pki.ca), "-aet", calling, "-aec", "NEXREL-CRM"]
        + ["localhost", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def echoscu_plain(port: int, *, calling: str = "PLANMECA") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["echoscu", "-aet", calling, "-aec", "NEXREL-CRM", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )


ECHO_OK = "Received Echo Response (Success)"


def test_echoscu_and_storescu_over_tls_with_a_client_certificate(tls_listener, pki, tmp_path):
    echo = echoscu_tls(tls_listener.tls_port, pki.client, pki)
    assert echo.returncode == 0, echo.stderr
    assert ECHO_OK in echo.stderr

    ds = intraoral(patient_id="TLS-1", patient_name="Chiffre^Ada")
    path = write(ds, tmp_path / "tls.dcm")
    store = subprocess.run(
        ["storescu", "-v", "+tls", str(pki.client.key), str(pki.client.certificate)]
        + ["+cf", str(pki.ca), "-aet", "PLANMECA", "-aec", "NEXREL-CRM", "localhost"]
        + [str(tls_listener.tls_port), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert store.returncode == 0, store.stderr
    assert "Received Store Response (Success)" in store.stderr
    stored = wait_until(
        lambda: DicomInstance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).first(), timeout=10
    )
    assert stored.sop_class_uid == ds.SOPClassUID
    assert stored.calling_ae == "PLANMECA"
    assert "rejected" not in tls_listener.output()
    # the plain port serves alongside
    assert echoscu_plain(tls_listener.port).returncode == 0


def test_clients_without_a_certificate_of_the_ca_are_refused(tls_listener, pki):
    anonymous = echoscu_tls(tls_listener.tls_port, None, pki)
    assert anonymous.returncode != 0 and ECHO_OK not in anonymous.stderr
    rogue = echoscu_tls(tls_listener.tls_port, pki.rogue_client, pki)
    assert rogue.returncode != 0 and ECHO_OK not in rogue.stderr
    wait_until(lambda: "PEER_DID_NOT_RETURN_A_CERTIFICATE" in tls_listener.output(), timeout=5)
    wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in tls_listener.output(), timeout=5)
    assert "TLS connection from 127.0.0.1 closed" in tls_listener.output()
    assert echoscu_tls(tls_listener.tls_port, pki.client, pki).returncode == 0


def test_a_tls_1_0_client_hello_is_refused(tls_listener):
    s_client = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_listener.tls_port}", "-tls1"]
        + ["-cipher", "DEFAULT:@SECLEVEL=0"],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    output = s_client.stdout + s_client.stderr
    assert "Cipher is (NONE)" in output or "no protocols available" in output, output
    wait_until(lambda: "UNSUPPORTED_PROTOCOL" in tls_listener.output(), timeout=5)


def s_client(port: int, pki: Pki, *options: str) -> str:
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(pki.ca)]
        + ["-cert", str(pki.client.certificate), "-key", str(pki.client.key), *options],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout + done.stderr


def test_tls_1_2_only_with_ecdhe_and_aead_suites(tls_listener, pki):
    port = tls_listener.tls_port
    for suite in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"):
        output = s_client(port, pki, "-tls1_2", "-cipher", suite)
        assert f"Cipher is {suite}" in output, output
        assert "Verify return code: 0 (ok)" in output
    for refused in ("AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256", "AES256-SHA"):
        output = s_client(port, pki, "-tls1_2", "-cipher", refused)  # RSA kex, CBC, both
        assert "Cipher is (NONE)" in output, output
    wait_until(lambda: tls_listener.output().count("NO_SHARED_CIPHER") == 3, timeout=5)


def test_a_silent_client_does_not_delay_others(tls_listener, pki):
    """Three sockets connect and send nothing: with the handshake in the accept loop (as
    pynetdicom does it) the echo would wait behind them, 3 x HANDSHAKE_TIMEOUT."""
    silent = [socket.create_connection(("127.0.0.1", tls_listener.tls_port)) for _ in range(3)]
    try:
        time.sleep(0.2)  # accepted before the echo connects
        started = time.monotonic()
        echo = echoscu_tls(tls_listener.tls_port, pki.client, pki)
        elapsed = time.monotonic() - started
        assert echo.returncode == 0, echo.stderr
        assert elapsed < 2, f"echo took {elapsed:.1f}s with silent clients connected"
        for sock in silent:  # then each is dropped, after the handshake timeout
            sock.settimeout(HANDSHAKE_TIMEOUT + 5)
            assert sock.recv(1) == b""
    finally:
        for sock in silent:
            sock.close()
    wait_until(
        lambda: tls_listener.output().count(f"no TLS handshake within {HANDSHAKE_TIMEOUT} s") == 3,
        timeout=5,
    )


def test_plain_dicom_on_the_tls_port_fails_cleanly(tls_listener, pki):
    plain = echoscu_plain(tls_listener.tls_port)
    assert plain.returncode != 0
    wait_until(lambda: "WRONG_VERSION_NUMBER" in tls_listener.output(), timeout=5)
    assert "Traceback" not in tls_listener.output()
    assert echoscu_tls(tls_listener.tls_port, pki.client, pki).returncode == 0
    assert echoscu_plain(tls_listener.port).returncode == 0


def test_tls_only_when_the_plain_port_is_disabled(listener_factory, pki):
    tls_port = free_port()
    proc, port = listener_factory(env=tls_env(pki), tls_port=tls_port, plain=False)
    assert echoscu_tls(tls_port, pki.client, pki).returncode == 0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


# --- pins ----------------------------------------------------------------------------------


def test_a_device_pinning_another_certificate_is_rejected_and_recorded(tls_listener, pki):
    other = issue(pki.ca_credentials, "pano-1")  # same CA, same subject, not this one
    DicomServer.objects.filter(ae_title="PLANMECA").update(tls_certificate_sha256=other.sha256)
    refused = echoscu_tls(tls_listener.tls_port, pki.client, pki)
    assert refused.returncode != 0
    assert "Association Rejected" in refused.stderr, refused.stderr
    wait_until(lambda: "is not the pinned" in tls_listener.output(), timeout=5)
    row = RefusedAssociation.objects.get(calling_ae="PLANMECA")
    assert pki.client.credentials.sha256 in row.reason and other.sha256 in row.reason

    # Its own certificate's fingerprint (as openssl prints it) or subject: accepted.
    fingerprint = pki.client.credentials.sha256
    DicomServer.objects.filter(ae_title="PLANMECA").update(
        tls_certificate_sha256=fingerprint,
        tls_certificate_subject="O = Nexrel (development), CN = pano-1",
    )
    assert echoscu_tls(tls_listener.tls_port, pki.client, pki).returncode == 0
    # A pinned device calling in the clear has no certificate to show.
    assert echoscu_plain(tls_listener.port).returncode != 0
    wait_until(lambda: "presented none" in tls_listener.output(), timeout=5)


def test_a_wrong_subject_pin_is_rejected(tls_listener, pki):
    DicomServer.objects.filter(ae_title="PLANMECA").update(
        tls_certificate_subject="CN=pano-2,O=Nexrel (development)"
    )
    assert echoscu_tls(tls_listener.tls_port, pki.client, pki).returncode != 0
    wait_until(lambda: "'CN=pano-2,O=Nexrel (development)'" in tls_listener.output(), timeout=5)
    assert RefusedAssociation.objects.filter(calling_ae="PLANMECA").exists()


# --- outbound ------------------------------------------------------------------------------


@pytest.fixture
def storescp_tls(pki, tmp_path) -> Iterator:
    """Start DCMTK storescp +tls (with ``files``' certificate, the listener's by default:
    it names localhost and 127.0.0.1), requiring a client certificate signed by the clinic
    CA; returns its port. Its log is storescp-<port>.log in ``tmp_path``."""
    started = []

    def start(files: Files = pki.listener) -> int:
        port = free_port()
        out = tmp_path / f"received-{port}"
        out.mkdir()
        log = tmp_path / f"storescp-{port}.log"
        proc = _start(
            ["storescp", "-v", "-aet", "TLSPEER", "+tls", str(files.key), str(files.certificate)]
            + ["+cf", str(pki.ca), "-od", str(out), str(port)],
            log_path=log,
            cwd=tmp_path,
        )
        started.append(proc)
        _wait_ready(proc, port, log, "storescp +tls")
        return port

    yield start
    for proc in started:
        stop_process(proc)


@pytest.fixture
def tls_storescp(storescp_tls) -> int:
    return storescp_tls()


@pytest.fixture
def our_certificate(settings, pki) -> None:
    """The test process calls with the clinic's client certificate, as the listener would."""
    settings.DICOM_TLS_CERT = str(pki.client.certificate)
    settings.DICOM_TLS_KEY = str(pki.client.key)
    settings.DICOM_TLS_CA = str(pki.ca)


def test_outbound_echo_over_tls_verifies_the_peer(db, practice, tls_storescp, our_certificate):
    by_name = peer_server(practice, tls_storescp, "TLSPEER", use_tls=True)
    by_name.host = "localhost"  # a name: checked against the certificate
    by_name.save()
    result = association.echo(by_name)
    assert result.ok, result.error
    # An IP address: the chain is verified (storescp's certificate names it, unchecked).
    by_ip = peer_server(practice, tls_storescp, "TLSPEER2", use_tls=True)
    assert association.echo(by_ip).ok
    # In the clear, the TLS port answers nothing DICOM.
    plain = peer_server(practice, tls_storescp, "TLSPEER3", use_tls=False)
    assert not association.echo(plain, timeout=5).ok


def test_outbound_tls_refuses_an_untrusted_certificate(
    db, practice, tls_storescp, our_certificate, pki
):
    server = peer_server(
        practice,
        tls_storescp,
        "TLSPEER",
        use_tls=True,
        tls_ca_certificates=pki.rogue_ca.certificate_pem().decode(),
    )
    result = association.echo(server, timeout=5)
    assert not result.ok
    assert "TLS certificate is not trusted" in result.error, result.error
    assert "certificate verify failed" not in result.error, "said in words, not OpenSSL's"


def test_outbound_tls_checks_the_host_name(db, practice, storescp_tls, our_certificate, pki):
    elsewhere = issue(pki.ca_credentials, "pacs", hosts=["pacs.example"])
    port = storescp_tls(_files(pki.ca.parent, "pacs", elsewhere))
    server = peer_server(practice, port, "TLSPEER", use_tls=True)
    server.host = "localhost"  # reaches it, but its certificate names only pacs.example
    server.save()
    result = association.echo(server, timeout=5)
    assert not result.ok and "Hostname mismatch" in result.error, result.error


def test_outbound_tls_with_a_wrong_pin_sends_nothing(
    db, practice, tls_storescp, our_certificate, pki, tmp_path
):
    server = peer_server(
        practice,
        tls_storescp,
        "TLSPEER",
        use_tls=True,
        tls_certificate_sha256=pki.client.credentials.sha256,  # not the peer's
    )
    result = association.echo(server, timeout=5)
    assert not result.ok
    assert "was not called" in result.error and pki.listener.credentials.sha256 in result.error
    # storescp acknowledges any request: none reached it (its "Association Received" is
    # the TLS connection).
    log = (tmp_path / f"storescp-{tls_storescp}.log").read_text()
    assert "Association Acknowledged" not in log, log

    server.tls_certificate_sha256 = pki.listener.credentials.sha256
    server.save()
    assert association.echo(server, timeout=5).ok
    assert "Association Acknowledged" in (tmp_path / f"storescp-{tls_storescp}.log").read_text()


def test_outbound_tls_without_our_certificate_says_so(db, practice, tls_storescp, settings, pki):
    settings.DICOM_TLS_CERT = settings.DICOM_TLS_KEY = ""
    settings.DICOM_TLS_CA = str(pki.ca)
    server = peer_server(practice, tls_storescp, "TLSPEER", use_tls=True)
    result = association.echo(server, timeout=5)
    assert not result.ok
    assert "it requires our certificate: set DICOM_TLS_CERT" in result.error, result.error


def test_c_move_to_a_tls_destination(tls_listener, storescp_tls, practice, tmp_path):
    """Our C-MOVE SCP's sub-association goes over TLS too, with the listener's certificate
    (storescp requires one signed by the clinic CA)."""
    instance = ingest_processed(practice, patient_id="P-TLS", patient_name="Chiffre^Ada")
    port = storescp_tls()
    peer_server(practice, port, "TLSPEER", use_tls=True)
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k"]
    keys.append(f"StudyInstanceUID={instance.study.study_instance_uid}")
    movescu = ["movescu", "-S", "-aet", "CARESTREAM", "-aec", "NEXREL-CRM", "-aem", "TLSPEER"]
    moved = subprocess.run(
        [*movescu, *keys, "127.0.0.1", str(tls_listener.port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert moved.returncode == 0, moved.stderr
    received = list((tmp_path / f"received-{port}").iterdir())
    assert len(received) == 1

    DicomServer.objects.filter(ae_title="TLSPEER").update(tls_certificate_sha256="0" * 64)
    subprocess.run([*movescu, *keys, "127.0.0.1", str(tls_listener.port)], timeout=60)
    assert len(list((tmp_path / f"received-{port}").iterdir())) == 1, "nothing more sent"
    wait_until(lambda: "is not the pinned" in tls_listener.output(), timeout=5)
