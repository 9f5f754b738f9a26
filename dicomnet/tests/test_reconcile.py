"""``reconcile_spool``: after a crash nothing acknowledged stays unprocessed, nothing partial
stays on disk."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django_q.models import OrmQ

from dicomnet.ingest.reconcile import reconcile_spool
from dicomnet.ingest.store import store_instance
from dicomnet.models import DicomInstance
from tests import dicom_samples


def queued_instance_ids() -> list[int]:
    return sorted(row.task["args"][0] for row in OrmQ.objects.all())


def partial(pid: int | str) -> Path:
    path = settings.SPOOL_DIR / "tmp" / str(pid) / "tmpabc123.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 128 + b"DICM half an object")
    return path


def orphan(practice_id: int | str, data: bytes) -> Path:
    """A spool file as a crash leaves it: fsynced and renamed, its row never committed."""
    path = settings.SPOOL_DIR / "objects" / str(practice_id) / f"{uuid.uuid4().hex}.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def dicom_bytes(**kwargs) -> bytes:
    return dicom_samples.to_bytes(dicom_samples.intraoral(**kwargs))


@pytest.fixture
def live_process():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_removes_partials_of_dead_processes_only(db, live_process):
    dead = partial(dead_pid())
    mine = partial(os.getpid())
    alive = partial(live_process)
    not_a_pid = partial("uploads")

    report = reconcile_spool()

    assert report.removed_partials == 1
    assert not dead.parent.exists()
    assert mine.exists(), "this process may be receiving into its own directory right now"
    assert alive.exists(), "another live listener is still receiving"
    assert not_a_pid.exists()


def test_requeues_instances_whose_processing_never_finished(practice, tmp_path):
    ids = []
    for n in range(3):
        path = dicom_samples.write(dicom_samples.intraoral(seed=n), tmp_path / f"{n}.dcm")
        ids.append(store_instance(path, practice=practice, server=None).instance.pk)
    # Their tasks are lost (a broker that forgot them, or a queue wiped by hand).
    OrmQ.objects.all().delete()
    DicomInstance.objects.filter(pk=ids[0]).update(state=DicomInstance.State.PROCESSED)
    DicomInstance.objects.filter(pk=ids[1]).update(state=DicomInstance.State.ERROR)

    assert reconcile_spool(min_age=dt.timedelta(hours=1)).requeued == 0  # too recent to judge
    report = reconcile_spool()

    assert report.requeued == 1
    assert queued_instance_ids() == [ids[2]]
    assert OrmQ.objects.get().task["func"] == "dicomnet.ingest.pipeline.process_instance"


def test_recovers_an_orphan_spool_file(practice, django_capture_on_commit_callbacks):
    data = dicom_bytes()
    lost = orphan(practice.pk, data)

    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile_spool()

    assert report.recovered_orphans == 1
    row = DicomInstance.objects.get()
    assert row.peer_address == "recovered from spool"
    assert Path(row.spool_path).read_bytes() == data
    assert Path(row.spool_path).parent == lost.parent
    assert not lost.exists() and not lost.with_suffix(".recover").exists()
    assert queued_instance_ids() == [row.pk]
    # Now known: a second pass finds nothing to do.
    with django_capture_on_commit_callbacks(execute=True):
        again = reconcile_spool()
    assert again.recovered_orphans == 0
    assert DicomInstance.objects.count() == 1


def test_orphan_identical_to_a_stored_object_is_dropped(practice, tmp_path):
    path = dicom_samples.write(dicom_samples.intraoral(), tmp_path / "in.dcm")
    data = path.read_bytes()
    kept = store_instance(path, practice=practice, server=None).instance
    resend = orphan(practice.pk, data)  # a resend that crashed before its duplicate check

    reconcile_spool()

    assert DicomInstance.objects.count() == 1
    assert not resend.exists()
    assert sorted((settings.SPOOL_DIR / "objects").rglob("*")) == [
        Path(kept.spool_path).parent,
        Path(kept.spool_path),
    ]


def test_bad_orphan_is_set_aside_as_bad_with_an_error(practice, caplog):
    bad = orphan(practice.pk, b"not a DICOM object at all")

    with caplog.at_level(logging.ERROR, logger="dicomnet.ingest.reconcile"):
        report = reconcile_spool()

    assert report.recovered_orphans == 0
    assert not DicomInstance.objects.exists()
    assert not bad.exists()
    assert bad.with_suffix(".bad").read_bytes() == b"not a DICOM object at all"
    assert any("could not be recovered" in r.getMessage() for r in caplog.records)
    # Set aside for a person; later passes leave it alone.
    reconcile_spool()
    assert bad.with_suffix(".bad").exists()


def test_orphan_of_an_unknown_practice_is_left_in_place(db, caplog):
    stray = orphan(9999, dicom_bytes())

    with caplog.at_level(logging.ERROR, logger="dicomnet.ingest.reconcile"):
        assert reconcile_spool().recovered_orphans == 0

    assert stray.exists()
    assert not DicomInstance.objects.exists()
    assert any("belongs to no practice" in r.getMessage() for r in caplog.records)


def test_recovery_interrupted_by_a_crash_is_finished_next_time(
    practice, django_capture_on_commit_callbacks
):
    data = dicom_bytes()
    staged = orphan(practice.pk, data).with_suffix(".recover")
    staged.with_suffix(".dcm").rename(staged)  # renamed aside, then the process died

    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile_spool()

    assert report.recovered_orphans == 1
    row = DicomInstance.objects.get()
    assert Path(row.spool_path).read_bytes() == data
    assert not staged.exists()
    assert queued_instance_ids() == [row.pk]
