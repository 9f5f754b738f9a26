"""Peers that misbehave on the wire (a scripted raw socket, see ``rawpeer``) must not hold
the listener's threads or memory; the number of associations is bounded."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.fixtures import wait_until
from tests.integration import rawpeer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("echoscu"), reason="DCMTK not installed"),
]

SOCKET_TIMEOUT = 3


def echoscu(port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["echoscu", "-aet", "CARESTREAM", "-aec", "NEXREL-CRM", "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_half_a_pdu_neither_blocks_others_nor_holds_its_socket(listener_factory):
    proc, port = listener_factory(env={"DICOM_SOCKET_TIMEOUT": str(SOCKET_TIMEOUT)})
    # Stalls before association: the first 10 bytes of an A-ASSOCIATE-RQ.
    before = rawpeer.connect(port)
    before.sendall(rawpeer.associate_rq()[:10])
    # Stalls inside an association: a P-DATA-TF declaring 1000 bytes, of which 100 are sent.
    inside = rawpeer.associate(port)
    inside.sendall(rawpeer.pdu_header(rawpeer.P_DATA_TF, 1000) + b"\x00" * 100)
    stalled_at = time.monotonic()

    result = echoscu(port)
    echo_done = time.monotonic() - stalled_at
    assert result.returncode == 0, result.stderr
    assert echo_done < SOCKET_TIMEOUT, "echo too slow to show the stalled peers were still open"

    for sock in (before, inside):
        closed_after = rawpeer.closed_by_peer_within(sock, timeout=SOCKET_TIMEOUT + 10)
        assert closed_after is not None, "the listener never closed a stalled socket"
        closed_at = time.monotonic() - stalled_at
        assert SOCKET_TIMEOUT - 0.5 <= closed_at <= SOCKET_TIMEOUT + 8, closed_at
        sock.close()
    assert proc.proc.poll() is None, "the listener died"
    assert echoscu(port).returncode == 0


def test_pdu_longer_than_negotiated_is_refused_without_reading_it(listener):
    proc, port = listener
    sock = rawpeer.associate(port)
    declared = 500 * 1024 * 1024
    sock.sendall(rawpeer.pdu_header(rawpeer.P_DATA_TF, declared))
    sent, chunk = 0, b"\x00" * (1024 * 1024)
    start = time.monotonic()
    with pytest.raises((ConnectionResetError, BrokenPipeError, TimeoutError)):
        # Without the guard the listener would buffer all of this in memory.
        while sent < 400 * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
    elapsed = time.monotonic() - start
    sock.close()

    assert sent < 64 * 1024 * 1024, f"the listener read {sent >> 20} MB before closing"
    assert elapsed < 10, elapsed
    assert rss_mb(proc.proc.pid) < 300
    log = wait_until(lambda: "beyond our maximum" in (out := proc.output()) and out, 5)
    assert f"declared a PDU of {declared} bytes" in log
    assert echoscu(port).returncode == 0, "the listener stopped serving"


def test_associations_beyond_the_maximum_are_rejected_transient_and_logged(listener_factory):
    proc, port = listener_factory(env={"DICOM_MAX_ASSOCIATIONS": "2"})
    # TCP probes (a load balancer's health check, a port scan) connect and close without a
    # request: they must not keep a slot for the ACSE timeout (30 s).
    for _ in range(3):
        rawpeer.connect(port).close()
    time.sleep(0.5)
    held = [rawpeer.associate(port), rawpeer.associate(port)]

    ae = AE(ae_title="CARESTREAM")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
    assert assoc.is_rejected
    rj = assoc.acceptor.primitive
    # transient, service provider (presentation related), local limit exceeded
    assert (rj.result, rj.result_source, rj.diagnostic) == (0x02, 0x03, 0x02)
    wait_until(lambda: "2 associations already active" in proc.output(), timeout=5)

    for sock in held:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def third_accepted() -> bool:
        assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
        if not assoc.is_established:
            return False
        assoc.release()
        return True

    wait_until(third_accepted, timeout=10, interval=0.5)
