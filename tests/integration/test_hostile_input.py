"""Hostile input at the network edge (issue 10 §6): what a misbehaving peer gets from the
running listener, what the listener logs, that its memory and threads stay bounded, and that
a legitimate association made meanwhile succeeds. The peers are in ``hostile`` (shared with
bench/bench_hostile.py, which measures the same cases for docs/security.md, "Hostile input").

One listener per test where the cases share its settings: its start costs more than they do.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest
from pydicom import Dataset
from pynetdicom import AE
from pynetdicom.dsutils import split_dataset
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

from dicomnet.dimse import status
from dicomnet.ingest.pipeline import process_instance
from dicomnet.models import DicomInstance, DicomServer
from tests.dicom_samples import ingest_processed
from tests.fixtures import free_port, wait_for_port, wait_until
from tests.integration import hostile, rawpeer

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("storescu"), reason="DCMTK not installed"),
]

RSS_BOUND_MB = 400  # the listener idles at ~150 MB; a bomb inflated would be gigabytes


def threads(proc) -> int:
    """The listener's thread count (idle: main, accept loop, heartbeat)."""
    return int(hostile.proc_status(proc.proc.pid)["Threads"])


def log_size(proc) -> int:
    """Where the listener's log ends now, in bytes (its text may hold any byte a peer sent)."""
    return proc.log_path.stat().st_size


def logged(proc, phrase: str, *, offset: int = 0, count: int = 1) -> str:
    """The listener's log from byte ``offset`` on, once ``phrase`` is in it ``count`` times."""

    def since() -> str:
        return proc.log_path.read_bytes()[offset:].decode(errors="replace")

    try:
        return wait_until(lambda: (out := since()).count(phrase) >= count and out, 5)
    except AssertionError:
        raise AssertionError(
            f"{phrase!r} not logged {count} time(s) after byte {offset}:\n{since()[-2000:]}"
        ) from None


# ---------------------------------------------------------------------- PDUs


def test_malformed_pdus_are_aborted_once_and_logged(listener):
    proc, port = listener
    idle = threads(proc)
    got, expected = {}, {}
    for name, case in hostile.MALFORMED.items():
        offset = log_size(proc)
        sock, since = hostile.send_hostile(port, case.data, inside=case.inside)
        echoed = hostile.echo(port)  # while the listener deals with the hostile one
        answer = hostile.answer(sock, since=since, timeout=5)
        sock.close()
        log = logged(proc, case.logged, offset=offset)
        aborts = ["A-ABORT"] if case.aborted else []
        got[name] = (
            answer.types,
            answer.closed,
            answer.seconds < 2,
            echoed,
            log.count(case.logged),
        )
        expected[name] = (aborts, True, True, True, 1)
    assert got == expected
    # Every aborted connection's threads end with it, not after the ACSE timeout (30 s);
    # 15 s leaves room for a loaded CI machine and still tells the two apart.
    wait_until(lambda: threads(proc) <= idle, 15)


@pytest.mark.parametrize("protocol", ["http", "tls"])
def test_another_protocol_on_the_dicom_port_is_named_aborted_once(listener, protocol):
    """Raw first: one A-ABORT and one line naming the protocol, not one of each per 6 bytes
    (pynetdicom would read on, taking every 6 bytes of the request for a PDU). Then a
    real client of that protocol, to show what its user sees."""
    proc, port = listener
    idle = threads(proc)
    data = hostile.HTTP_REQUEST if protocol == "http" else hostile.client_hello()
    sock, since = hostile.send_hostile(port, data, inside=False)
    assert hostile.echo(port)
    answer = hostile.answer(sock, since=since, timeout=5)
    sock.close()
    assert (answer.types, answer.closed) == (["A-ABORT"], True), str(answer)
    assert answer.seconds < 2, str(answer)

    if protocol == "http":
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            client.request("GET", "/dicomweb/studies")
            client.getresponse()  # A-ABORT's 10 bytes are no HTTP status line
        client.close()
        named = "sent an HTTP request to the DICOM port, not an A-ASSOCIATE-RQ"
    else:
        context = ssl.create_default_context()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                context.wrap_socket(raw, server_hostname="nexrel.local")
        named = "sent a TLS ClientHello to the DICOM port, not an A-ASSOCIATE-RQ"
    log = logged(proc, named, count=2)
    assert log.count(named) == 2  # one per connection
    unknown = {"http": "'0x47'", "tls": "'0x16'"}[protocol]  # "G", a TLS handshake record
    assert log.count(f"Unknown PDU type received {unknown}") == 2
    assert log.count("Unknown PDU type received") == 2, "bytes after the first were read"
    assert hostile.echo(port)
    wait_until(lambda: threads(proc) <= idle, 5)


# ---------------------------------------------------------------------- slow and silent peers

SLOW = {"DICOM_SOCKET_TIMEOUT": "3", "DICOM_ACSE_TIMEOUT": "4", "DICOM_NETWORK_TIMEOUT": "4"}


@pytest.mark.parametrize(
    ("case", "inside", "interval"),
    [
        # The A-ASSOCIATE-RQ a byte a second: each byte restarts the 3 s per-recv timeout,
        # the ACSE timeout (4 s from connecting) bounds the whole request.
        ("request, a byte a second", False, 1.0),
        # A P-DATA-TF a byte a second, once associated: the network timeout bounds it.
        ("P-DATA-TF, a byte a second", True, 1.0),
        # Connected, nothing sent: the ACSE timeout.
        ("silent", False, None),
    ],
)
def test_a_slow_peer_is_dropped_within_its_timeout(listener_factory, case, inside, interval):
    proc, port = listener_factory(env=SLOW)
    data = (
        rawpeer.pdu_header(rawpeer.P_DATA_TF, 1000) + b"\x00" * 1000
        if inside
        else rawpeer.associate_rq()
    )
    sock = rawpeer.associate(port) if inside else hostile.connect(port)
    since = time.monotonic()
    trickle = hostile.Trickle(sock, data, interval)
    with hostile.Usage(proc.proc.pid) as usage:
        trickle.start()
        time.sleep(1.5)
        assert hostile.echo(port), "a device was refused while the slow peer was open"
        answer = hostile.answer(sock, since=since, timeout=15)
    trickle.stop.set()
    trickle.join()
    sock.close()
    # Without the deadline the request would take 161 s, the P-DATA-TF 1006 s.
    assert answer.closed, f"{case}: {answer}"
    assert 3.5 <= answer.seconds <= 7, f"{case}: {answer}"
    if interval is not None:
        assert trickle.sent < len(data)
        within = "NETWORK_TIMEOUT (4 s)" if inside else "ACSE_TIMEOUT (4 s) of connecting"
        logged(proc, f"of a PDU arrived within DICOM_{within}: closing")
    assert usage.peak_rss_mb < RSS_BOUND_MB
    assert hostile.echo(port)


# ---------------------------------------------------------------------- floods


def test_idle_connections_from_one_host_cannot_lock_the_devices_out(listener_factory):
    """50 connections from one host that never send a request: 4 (DICOM_MAX_PENDING_PER_HOST)
    are kept until the ACSE timeout, the rest closed at accept, without a thread each. A
    device on another address associates meanwhile; without the per-host bound, pynetdicom
    counts the idle ones as associations and refuses it (local limit exceeded)."""
    proc, port = listener_factory(env={"DICOM_MAX_ASSOCIATIONS": "8"})
    idle = threads(proc)
    with hostile.Usage(proc.proc.pid) as usage:
        sockets = hostile.connect_many(port, 50, source="127.0.0.2")
        since = time.monotonic()
        answers = [hostile.answer(s, since=since, timeout=1) if s else None for s in sockets if s]
        assert hostile.echo(port, source="127.0.0.1")
        busy = threads(proc)
    closed = sum(1 for a in answers if a and a.closed)
    assert (len(answers), closed) == (50, 46)
    assert busy <= idle + 2 * 4 + 2, busy
    assert usage.peak_threads <= 30, usage.peak_threads  # without the bound, 100+
    assert usage.peak_rss_mb < RSS_BOUND_MB
    log = logged(proc, "closed at accept")
    assert "4 connections from 127.0.0.2 have sent no A-ASSOCIATE-RQ yet" in log
    for s in sockets:
        if s:
            s.close()


def test_floods_from_many_hosts_are_bounded_in_connections_and_associations(listener_factory):
    """30 hosts, one idle connection each (under the per-host bound): past
    DICOM_MAX_CONNECTIONS (8) open connections, the rest are closed at accept, so threads
    stay bounded (two per connection). Then 30 hosts request at once: at most
    DICOM_MAX_ASSOCIATIONS (4) are accepted, the others rejected (transient, local limit
    exceeded) or closed at accept. Once the flood goes, a device associates again."""
    env = {"DICOM_MAX_ASSOCIATIONS": "4", "DICOM_MAX_CONNECTIONS": "8"}
    proc, port = listener_factory(env=env)
    idle = threads(proc)
    sources = [f"127.0.0.{10 + i}" for i in range(30)]
    with hostile.Usage(proc.proc.pid) as idle_usage:
        idle_sockets = [hostile.connect(port, source=source) for source in sources]
        since = time.monotonic()
        answers = [hostile.answer(s, since=since, timeout=1) for s in idle_sockets]
    assert sum(1 for a in answers if a.closed) == 30 - 8
    assert idle_usage.peak_threads <= idle + 2 * 8 + 4, idle_usage.peak_threads  # 60+ unbounded
    logged(proc, "8 connections open (DICOM_MAX_CONNECTIONS)")
    for sock in idle_sockets:
        sock.close()
    wait_until(lambda: threads(proc) <= idle, 5)

    with hostile.Usage(proc.proc.pid) as usage:
        results = hostile.associate_many(port, sources)
    outcomes = [what for _, what in results]
    accepted = outcomes.count("A-ASSOCIATE-AC")
    assert 1 <= accepted <= 4, outcomes
    assert set(outcomes) <= {"A-ASSOCIATE-AC", "A-ASSOCIATE-RJ", "closed"}, outcomes
    assert usage.peak_threads <= idle + 2 * 8 + 12, usage.peak_threads  # and 8 spool-fsync
    assert max(usage.peak_rss_mb, idle_usage.peak_rss_mb) < RSS_BOUND_MB
    for sock, _ in results:
        if sock:
            sock.close()
    wait_until(lambda: hostile.echo(port), timeout=10, interval=0.5)


# ---------------------------------------------------------------------- crafted objects


def test_crafted_objects_get_the_documented_status_in_bounded_memory(listener, tmp_path):
    """Each object over one association, a C-ECHO on another after each. Refused: 0xC000
    (Cannot Understand), with the reason logged. Stored (Success): only objects whose
    header is whole; their pixels are the preview's to refuse, later, without decoding
    them (NEXREL_MAX_DECODED_PIXELS)."""
    proc, port = listener
    refused = {
        "bad VR": (hostile.bad_vr, "Unknown Value Representation 'ZZ'"),
        "header element past the end": (hostile.header_past_end, "truncated, element"),
        "1000 nested sequences": (
            lambda p: hostile.nested(p, 1000),
            "RecursionError: maximum recursion depth exceeded",
        ),
        "deflate bomb (2 GiB)": (
            hostile.deflate_bomb,
            "inflates to more than 134217728 bytes (NEXREL_MAX_INFLATED_BYTES)",
        ),
    }
    stored = {
        "pixels past the end": hostile.pixels_past_end,
        "100 nested sequences": lambda p: hostile.nested(p, 100),
        "RLE bomb (65535 x 65535)": hostile.rle_bomb,
    }
    got, expected = {}, {}
    with hostile.Usage(proc.proc.pid) as usage, hostile.store_association(port) as assoc:
        for name, (build, reason) in refused.items():
            offset = log_size(proc)
            got[name] = (hostile.store(assoc, build(tmp_path / "x.dcm")), hostile.echo(port))
            expected[name] = (status.CANNOT_UNDERSTAND, True)
            line = f"refused with 0x{status.CANNOT_UNDERSTAND:04X}: not a readable DICOM"
            log = logged(proc, line, offset=offset)
            assert reason in log, (name, log)
        files = {}
        for name, build in stored.items():
            files[name] = build(tmp_path / f"{len(files)}.dcm")
            got[name] = (hostile.store(assoc, files[name]), hostile.echo(port))
            expected[name] = (status.SUCCESS, True)
    assert got == expected
    assert usage.peak_rss_mb < RSS_BOUND_MB, usage.peak_rss_mb
    spool_tmp = Path(proc.env["NEXREL_SPOOL_DIR"]) / "tmp"
    assert not [p for p in spool_tmp.rglob("*") if p.is_file()], "a refused object left a file"

    # Durably stored as received; the pipeline (run here, as a worker would) refuses the
    # bomb's pixels from the header alone, well within its memory.
    rows = list(DicomInstance.objects.order_by("pk"))
    assert len(rows) == len(stored)
    for row, sent in zip(rows, files.values(), strict=True):
        _, offset = split_dataset(sent)  # the data set as sent, after our file meta
        assert Path(row.spool_path).read_bytes().endswith(sent.read_bytes()[offset:])
    tracemalloc.start()
    try:
        for row in rows:
            assert process_instance(row.pk) == "processed"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 1024**2, f"the pipeline held {peak >> 20} MB"
    errors = dict(zip(stored, DicomInstance.objects.order_by("pk").values_list(
        "preview_error", flat=True), strict=True))  # fmt: skip
    assert "NEXREL_MAX_DECODED_PIXELS" in errors["RLE bomb (65535 x 65535)"]
    assert "65535 x 65535" in errors["RLE bomb (65535 x 65535)"]
    # Its one frame is whole (the declared length runs past it): rendered, as received.
    assert errors["pixels past the end"] == errors["100 nested sequences"] == ""


def test_path_like_and_overlong_uids_are_refused_and_never_a_path(listener, tmp_path):
    """0xA900 (Data Set Does Not Match SOP Class: the UIDs, parsing.check_uids), logged;
    nothing written anywhere under the UID's name."""
    proc, port = listener
    long_uid = "1." + "2" * 70  # 72 characters, the limit is 64
    with hostile.store_association(port) as assoc:
        statuses = {
            # in the command and the data set (pynetdicom sends it, warning)
            "../../etc/passwd": hostile.store(
                assoc, hostile.with_uids(tmp_path / "a.dcm", sop_uid="../../etc/passwd")
            ),
            "1.2.3/../../x": hostile.store(
                assoc, hostile.with_uids(tmp_path / "b.dcm", sop_uid="1.2.3/../../x")
            ),
            # pynetdicom won't put 72 characters in a command: in the data set only
            long_uid: hostile.store(
                assoc,
                hostile.with_uids(tmp_path / "c.dcm", sop_uid=long_uid, command_sop_uid="1.2.3"),
            ),
        }
    assert statuses == dict.fromkeys(statuses, status.DATASET_DOES_NOT_MATCH_SOP_CLASS)
    # DCMTK sends the 72 characters in the command too.
    response = hostile.storescu(port, hostile.with_uids(tmp_path / "d.dcm", sop_uid=long_uid))
    assert "DataSetDoesNotMatchSOPClass" in response, response
    assert hostile.echo(port)

    log = logged(proc, "refused with 0xA900", count=4)
    assert "SOPInstanceUID '../../etc/passwd' is missing or not a valid UID" in log
    assert f"SOPInstanceUID '{long_uid}' is missing or not a valid UID" in log
    assert not DicomInstance.objects.exists()
    data_dir = Path(proc.env["NEXREL_DATA_DIR"])
    written = [p for p in data_dir.parent.rglob("*") if "passwd" in p.name or "../" in str(p)]
    assert written == []
    assert not [p for p in (data_dir / "spool").rglob("*") if p.is_file()]


# ---------------------------------------------------------------------- C-MOVE destinations


@pytest.fixture
def foreign_scp(other_practice, tmp_path):
    """DCMTK storescp registered as PACSB, a device of practice B (not the demo's)."""
    port = free_port()
    out = tmp_path / "pacsb"
    out.mkdir()
    scp = subprocess.Popen(
        ["storescp", "-aet", "PACSB", "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    DicomServer.objects.filter(pk=other_practice.server.pk).update(host="127.0.0.1", port=port)
    yield out
    scp.terminate()
    scp.wait(timeout=10)


@pytest.mark.parametrize("destination", ["NOWHERE", "PACSB"], ids=["unknown", "foreign"])
def test_move_to_an_unknown_or_foreign_destination_is_a801(
    listener, practice, foreign_scp, destination
):
    proc, port = listener
    study = ingest_processed(practice, patient_id="1001", patient_name="Côté^Zoé").study
    ae = AE(ae_title="CARESTREAM")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study.study_instance_uid
    model = StudyRootQueryRetrieveInformationModelMove
    responses = [rsp for rsp, _ in assoc.send_c_move(query, destination, model)]
    assoc.release()
    assert [r.Status for r in responses] == [status.MOVE_DESTINATION_UNKNOWN]
    logged(proc, f"refused with 0xA801: destination '{destination}' is not an active device")
    time.sleep(0.5)
    assert list(foreign_scp.iterdir()) == [], "an object went to another practice's device"
    assert hostile.echo(port)
