"""SIGKILL the listener in the middle of a storescu batch: nothing half-written survives,
and everything it acknowledged is processed once it is back (reconcile at start) and a
worker runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dicomnet.models import DicomInstance
from tests.fixtures import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("storescu"), reason="DCMTK not installed"),
]

INTRAORAL = "1.2.840.10008.5.1.4.1.1.1.3"
ROWS, COLUMNS = 1024, 2048  # 16-bit: 4 MiB of pixel data per object
OBJECTS = 40


def make_batch(directory: Path) -> dict[Path, str]:
    """``OBJECTS`` intra-oral images with fresh UIDs, one study: path -> SOP Instance UID."""
    directory.mkdir()
    gradient = np.add.outer(np.arange(ROWS), np.arange(COLUMNS)).astype(np.uint16) * 2
    study, series = generate_uid(), generate_uid()
    batch = {}
    for number in range(1, OBJECTS + 1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = INTRAORAL
        ds.SOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName = "1001", "COTE^ZOE"
        ds.Modality, ds.InstanceNumber = "IO", number
        ds.Rows, ds.Columns = ROWS, COLUMNS
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = (gradient + number).tobytes()
        path = directory / f"io{number:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        batch[path] = ds.SOPInstanceUID
    return batch


def acknowledged(storescu_log: str, batch: dict[Path, str]) -> set[str]:
    """SOP Instance UIDs storescu received a Success response for."""
    done, current = set(), None
    for line in storescu_log.splitlines():
        if m := re.match(r"I: Sending file: (.+)$", line):
            current = batch[Path(m.group(1))]
        elif line.startswith("I: Received Store Response (Success)") and current:
            done.add(current)
    return done


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def test_sigkill_mid_association_loses_nothing_acknowledged(
    listener_factory, isolated_data, tmp_path, request
):
    batch = make_batch(tmp_path / "batch")
    spool = isolated_data / "spool"
    listener, port = listener_factory()
    log_path = tmp_path / "storescu.log"
    with open(log_path, "w") as log:
        scu = subprocess.Popen(
            ["storescu", "-v", "-aet", "CARESTREAM", "-aec", "NEXREL-CRM"]
            + ["127.0.0.1", str(port), *map(str, batch)],
            stderr=log,
            stdout=subprocess.DEVNULL,
        )
    try:
        # 1. Catch the listener mid-object, after a few acknowledgements: frozen (SIGSTOP)
        #    while a temp file is there. (Stopping storescu instead left a race: the
        #    kernel's loopback buffers could hold the rest of the object, which the
        #    listener then finished before the kill; it reads fast enough now to win it.)
        incoming = spool / "tmp" / str(listener.proc.pid)
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "never caught an object in flight"
            assert scu.poll() is None, "storescu finished before the kill"
            if len(acknowledged(log_path.read_text(), batch)) >= 5 and files_under(incoming):
                os.kill(listener.proc.pid, signal.SIGSTOP)
                if files_under(incoming):
                    break
                os.kill(listener.proc.pid, signal.SIGCONT)  # finished meanwhile: next one
            time.sleep(0.005)
        listener.kill()  # SIGKILL, with the association open and an object half received
    finally:
        scu.kill()
        scu.wait()
    acked = acknowledged(log_path.read_text(), batch)
    assert 5 <= len(acked) < OBJECTS

    # 2. Nothing half-written in the spool's objects: each file is a whole object of ours.
    partials = files_under(spool / "tmp")
    assert partials, "the object in flight should have left a partial temp file"
    objects = files_under(spool / "objects")
    assert len(objects) >= len(acked)
    for path in objects:
        ds = pydicom.dcmread(path)
        assert ds.SOPInstanceUID in batch.values()
        assert len(ds.PixelData) == ROWS * COLUMNS * 2, f"{path} is cut off"

    # 3. Restart: reconcile removes the dead process's partials and indexes any complete
    #    file that has no row yet.
    restarted, _ = listener_factory()
    assert not any(p.exists() for p in partials), "partial temp files survived the restart"
    assert not (spool / "tmp" / str(listener.proc.pid)).exists()
    assert f"removed_partials={len(partials)}" in restarted.output()
    spooled = set(DicomInstance.objects.values_list("spool_path", flat=True))
    for path in files_under(spool / "objects"):
        assert str(path) in spooled, f"{path} has no row after reconcile"
    assert acked <= set(DicomInstance.objects.values_list("sop_instance_uid", flat=True))

    # 4. A worker processes every acknowledged object.
    request.getfixturevalue("worker")
    processed = DicomInstance.objects.filter(
        sop_instance_uid__in=acked, state=DicomInstance.State.PROCESSED
    )
    wait_until(lambda: processed.count() == len(acked), timeout=120, interval=0.5)
