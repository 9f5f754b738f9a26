"""End to end: STOW-RS of a ~300 MB body and WADO-RS of a 300-slice study never hold the whole
body in the web server's memory. The server's peak RSS (``VmHWM``, reset through
``/proc/<pid>/clear_refs``) is measured around each request and must stay far below the body."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from pydicom import dcmwrite
from pydicom.uid import generate_uid

from dicomnet.ingest.pipeline import process_instance
from dicomnet.models import DicomInstance
from tests.dicom_samples import ingest_bytes, intraoral, to_bytes
from tests.e2e.test_dicomweb_client import csrf_session, logged_in_session

MB = 1024 * 1024


# ---------------------------------------------------------------------- the server's memory


def _listening_inode(port: int) -> str:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return inode
    raise AssertionError(f"nothing listens on port {port}")


def server_pid(base: str) -> int:
    """The PID of the process listening on the web server's port (the fixture yields a URL)."""
    port = urlsplit(base).port
    assert port, base
    target = f"socket:[{_listening_inode(port)}]"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") == target:
                        cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                        assert b"runserver" in cmdline, cmdline
                        return int(entry)
    raise AssertionError(f"no process holds {target}")


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as lines:
        for line in lines:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class PeakRss:
    """The growth of a process's peak RSS from now: VmHWM reset to the current RSS when the
    kernel allows it (writing 5 to clear_refs), else measured against the RSS of now."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        self.before = _status_kib(pid, "VmRSS")

    def growth_mb(self) -> float:
        return (_status_kib(self.pid, "VmHWM") - self.before) / 1024


# ---------------------------------------------------------------------- samples


def large_instance(study_uid: str, series_uid: str, number: int, pixels: bytes, side: int):
    """A DX-like single-frame 16-bit image of ``side`` x ``side`` (``pixels`` its data)."""
    ds = intraoral(study_uid=study_uid, series_uid=series_uid, instance_number=number)
    ds.Rows = ds.Columns = side
    ds.PixelData = pixels
    return ds


def stow_type(boundary: str) -> str:
    return f'multipart/related; type="application/dicom"; boundary={boundary}'


def write_stow_body(path: Path, boundary: str, datasets) -> int:
    """One multipart/related body on disk, each instance written straight into the file."""
    with open(path, "wb") as out:
        for ds in datasets:
            out.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            dcmwrite(out, ds, enforce_file_format=True)
            out.write(b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
    return path.stat().st_size


def warm_up(base: str, session, practice) -> None:
    """One small STOW-RS and WADO-RS first, so imports and caches are not counted below."""
    ds = intraoral(size=64)
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + to_bytes(ds)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    stored = session.post(
        f"{base}/dicomweb/studies",
        data=body,
        headers={"Content-Type": stow_type(boundary)},
        timeout=30,
    )
    assert stored.status_code == 200, stored.text[:500]
    instance = DicomInstance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert process_instance(instance.pk) == "processed"
    got = session.get(f"{base}/dicomweb/studies/{ds.StudyInstanceUID}", timeout=30)
    assert got.status_code == 200


# ---------------------------------------------------------------------- the tests


@pytest.fixture
def large_files_removed(isolated_data):
    """The ~0.9 GB this test writes (body, spool) is removed at once, not left to pytest."""
    yield
    shutil.rmtree(isolated_data, ignore_errors=True)


def test_stow_rs_of_a_300_mb_body_keeps_the_server_rss_bounded(
    web_server, practice, tmp_path, large_files_removed
):
    started = time.monotonic()
    session = csrf_session(web_server)
    warm_up(web_server, session, practice)

    # Three single-frame 7168 x 7168 16-bit images: 98 MiB of pixels each, ~294 MiB in all.
    side = 7168
    pixels = (np.arange(side * side, dtype=np.uint32) % 4096).astype(np.uint16).tobytes()
    study_uid, series_uid = generate_uid(), generate_uid()
    datasets = [large_instance(study_uid, series_uid, n, pixels, side) for n in (1, 2, 3)]
    sop_uids = {str(ds.SOPInstanceUID) for ds in datasets}
    boundary = uuid.uuid4().hex
    body = tmp_path / "stow-body"
    size = write_stow_body(body, boundary, datasets)
    del pixels, datasets
    assert size > 300_000_000

    peak = PeakRss(server_pid(web_server))
    with open(body, "rb") as stream:
        answer = session.post(
            f"{web_server}/dicomweb/studies",
            data=stream,
            headers={"Content-Type": stow_type(boundary)},
            timeout=300,
        )
    growth = peak.growth_mb()
    body.unlink()
    assert answer.status_code == 200, answer.text[:500]
    # Durable when answered (the study is attached later, by the pipeline).
    stored = DicomInstance.objects.filter(practice=practice, sop_instance_uid__in=sop_uids)
    assert stored.count() == 3
    assert all(i.size > 100_000_000 for i in stored)
    print(
        f"STOW-RS of {size / MB:.0f} MiB: server peak RSS +{growth:.1f} MiB,",
        f"{time.monotonic() - started:.1f} s",
    )
    # Measured +2 MiB (2026-12, 2 cores); the bound leaves a wide margin for allocator noise
    # yet stays under one part (98 MiB), let alone the body (294 MiB): holding either fails.
    assert growth < BOUND_STOW_MB, f"the server's peak RSS grew by {growth:.1f} MiB"


def test_wado_rs_of_a_300_slice_study_keeps_the_server_rss_bounded(web_server, practice):
    started = time.monotonic()
    session = logged_in_session(web_server)
    warm_up(web_server, csrf_session(web_server), practice)

    # 300 slices of 512 x 512 16-bit (512 KiB of pixels each, ~150 MiB in all).
    study_uid, series_uid = generate_uid(), generate_uid()
    template = intraoral(size=512)
    total = 0
    for n in range(1, 301):
        ds = template
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = n
        data = to_bytes(ds)
        total += len(data)
        ingest_bytes(practice, data, position=n)
    ingested = time.monotonic()

    peak = PeakRss(server_pid(web_server))
    received = 0
    with session.get(
        f"{web_server}/dicomweb/studies/{study_uid}", stream=True, timeout=120
    ) as answer:
        assert answer.status_code == 200, answer.text[:500]
        assert answer.headers["Content-Type"].startswith("multipart/related")
        for chunk in answer.iter_content(chunk_size=256 * 1024):
            received += len(chunk)
    growth = peak.growth_mb()
    assert received >= total
    print(
        f"WADO-RS of {received / MB:.0f} MiB (300 slices): server peak RSS +{growth:.1f} MiB,",
        f"ingest {ingested - started:.1f} s, retrieve {time.monotonic() - ingested:.1f} s",
    )
    # Measured +5 MiB (2026-12, 2 cores); the bound leaves a wide margin for allocator noise
    # yet stays under a third of the body (150 MiB): holding it, or a good part, fails.
    assert growth < BOUND_WADO_MB, f"the server's peak RSS grew by {growth:.1f} MiB"


BOUND_STOW_MB = 64
BOUND_WADO_MB = 48
