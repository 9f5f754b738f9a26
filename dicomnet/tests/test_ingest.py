"""The durability contract behind a C-STORE Success, tested on ``store_instance`` and on the
C-STORE handler fed by pynetdicom's own receive path (no socket)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import subprocess
import tempfile
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_q.models import OrmQ
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, _config, dimse_messages, evt
from pynetdicom.association import Association
from pynetdicom.dimse_messages import C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.presentation import build_context

from dicomnet.dimse import status
from dicomnet.ingest import scp
from dicomnet.ingest.store import InvalidDataset, OutOfResources, Unreadable, store_instance
from dicomnet.models import DicomInstance, DicomServer
from dicomnet.net import incoming
from dicomnet.net.access import AssociationGrant
from patients.models import Practice
from tests import dicom_samples


@pytest.fixture
def device(practice) -> DicomServer:
    return DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")


def received(tmp_path: Path, ds, name: str = "received.dcm") -> Path:
    """A file as the listener hands it over (store_instance consumes it)."""
    return dicom_samples.write(ds, tmp_path / "incoming" / name)


def spool_files() -> list[Path]:
    return sorted(p for p in Path(settings.SPOOL_DIR).rglob("*") if p.is_file())


def queued_tasks() -> list[dict]:
    return [row.task for row in OrmQ.objects.order_by("id")]


def store(path: Path, practice, device, **kwargs):
    return store_instance(
        path,
        practice=practice,
        server=device,
        calling_ae="CARESTREAM",
        peer_address="192.0.2.7",
        **kwargs,
    )


def test_success_spools_commits_and_enqueues_with_the_commit(practice, device, tmp_path):
    ds = dicom_samples.intraoral()
    path = received(tmp_path, ds)
    original = path.read_bytes()

    outcome = store(path, practice, device, expected_sop_instance_uid=ds.SOPInstanceUID)

    assert not outcome.duplicate and not outcome.conflict
    assert not path.exists(), "the received file is renamed into the spool, not copied"
    spooled = Path(outcome.instance.spool_path)
    assert spooled.parent == settings.SPOOL_DIR / "objects" / str(practice.pk)
    assert spooled.read_bytes() == original

    row = DicomInstance.objects.get()
    assert row.sha256 == hashlib.sha256(original).hexdigest()
    assert row.size == len(original)
    assert row.sop_instance_uid == ds.SOPInstanceUID
    assert row.sop_class_uid == ds.SOPClassUID
    assert (row.calling_ae, row.peer_address, row.server) == ("CARESTREAM", "192.0.2.7", device)
    assert row.state == DicomInstance.State.RECEIVED
    assert row.version == 1

    (task,) = queued_tasks()
    assert task["func"] == "dicomnet.ingest.pipeline.process_instance"
    assert tuple(task["args"]) == (row.pk,)


def test_row_and_task_commit_together_or_not_at_all(practice, device, tmp_path):
    """With the ORM broker the task is written in the row's transaction: a rollback
    leaves neither, so there is never a row without its task nor a task without its row."""
    ds = dicom_samples.intraoral()
    with transaction.atomic():
        store(received(tmp_path, ds), practice, device)
        assert DicomInstance.objects.count() == 1
        assert len(queued_tasks()) == 1
        transaction.set_rollback(True)
    assert DicomInstance.objects.count() == 0
    assert queued_tasks() == []


def test_other_brokers_get_the_task_after_the_commit(
    practice, device, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.Q_CLUSTER = {"name": "nexrel", "redis": "redis://127.0.0.1:1/0"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        store(received(tmp_path, dicom_samples.intraoral()), practice, device)
    assert len(callbacks) == 1, "a Redis task must wait for the commit"
    assert queued_tasks() == []


def test_resent_identical_object_is_a_duplicate(
    practice, device, tmp_path, django_capture_on_commit_callbacks
):
    ds = dicom_samples.intraoral()
    with django_capture_on_commit_callbacks(execute=True):
        first = store(received(tmp_path, ds, "a.dcm"), practice, device)
    resend = received(tmp_path, ds, "b.dcm")
    with django_capture_on_commit_callbacks(execute=True):
        again = store(resend, practice, device)

    assert again.duplicate and not again.conflict
    assert again.instance.pk == first.instance.pk
    assert DicomInstance.objects.count() == 1
    assert not resend.exists()
    assert spool_files() == [Path(first.instance.spool_path)], "the resend's copy is discarded"
    # Not processed yet: the resend may mean the task was lost, so it is queued again.
    assert [t["args"][0] for t in queued_tasks()] == [first.instance.pk] * 2


def test_resend_replaces_a_committed_row_whose_spool_file_was_lost(
    practice, device, tmp_path, django_capture_on_commit_callbacks
):
    """The spool directory's flush runs with the row's commit: a machine crash between the
    two leaves a row without its file, and no Success. The sender's resend is kept."""
    ds = dicom_samples.intraoral()
    with django_capture_on_commit_callbacks(execute=True):
        first = store(received(tmp_path, ds, "a.dcm"), practice, device)
    Path(first.instance.spool_path).unlink()  # the entry that never reached the disk
    resend = received(tmp_path, ds, "b.dcm")
    original = resend.read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        again = store(resend, practice, device)

    assert again.instance.pk == first.instance.pk
    row = DicomInstance.objects.get()
    assert Path(row.spool_path).read_bytes() == original
    assert spool_files() == [Path(row.spool_path)]
    assert [t["args"][0] for t in queued_tasks()] == [row.pk] * 2


def test_resent_after_processing_queues_nothing(
    practice, device, tmp_path, django_capture_on_commit_callbacks
):
    ds = dicom_samples.intraoral()
    with django_capture_on_commit_callbacks(execute=True):
        first = store(received(tmp_path, ds, "a.dcm"), practice, device)
    DicomInstance.objects.filter(pk=first.instance.pk).update(state=DicomInstance.State.PROCESSED)
    with django_capture_on_commit_callbacks(execute=True):
        assert store(received(tmp_path, ds, "b.dcm"), practice, device).duplicate
    assert len(queued_tasks()) == 1


def test_same_uid_different_bytes_is_a_flagged_new_version(
    practice, device, tmp_path, django_capture_on_commit_callbacks
):
    uid = generate_uid()
    with django_capture_on_commit_callbacks(execute=True):
        first = store(
            received(tmp_path, dicom_samples.intraoral(sop_uid=uid, seed=1)), practice, device
        )
    first_bytes = Path(first.instance.spool_path).read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        second = store(
            received(tmp_path, dicom_samples.intraoral(sop_uid=uid, seed=2)), practice, device
        )

    assert second.conflict and not second.duplicate
    assert (second.instance.version, second.instance.conflict) == (2, True)
    assert second.instance.sha256 != first.instance.sha256
    kept = DicomInstance.objects.get(pk=first.instance.pk)
    assert (kept.version, kept.conflict, kept.sha256) == (1, False, first.instance.sha256)
    assert Path(kept.spool_path).read_bytes() == first_bytes, "the first is never overwritten"
    assert len(spool_files()) == 2
    assert sorted(t["args"][0] for t in queued_tasks()) == [first.instance.pk, second.instance.pk]


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"SOPInstanceUID": "1.2.3.4.5"}, {}),  # dataset differs from the command
        ({}, {"expected_sop_class_uid": "1.2.840.10008.5.1.4.1.1.2"}),  # CT in the command
        ({"SOPInstanceUID": "1.2.abc.4"}, {}),
        ({"StudyInstanceUID": "1.2." + "3" * 70}, {}),  # longer than 64
        ({"SeriesInstanceUID": ""}, {}),
    ],
    ids=["sop-uid-mismatch", "sop-class-mismatch", "malformed", "too-long", "missing"],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
def test_uids_wrong_or_invalid_answer_a900(practice, device, tmp_path, change, expected):
    ds = dicom_samples.intraoral()
    command_uid = ds.SOPInstanceUID
    for keyword, value in change.items():
        setattr(ds, keyword, value)
    path = received(tmp_path, ds)

    with pytest.raises(InvalidDataset) as caught:
        store(path, practice, device, expected_sop_instance_uid=command_uid, **expected)

    assert caught.value.status == 0xA900 == status.DATASET_DOES_NOT_MATCH_SOP_CLASS
    assert not DicomInstance.objects.exists()
    assert spool_files() == []


@pytest.mark.parametrize(
    "content",
    [b"", b"this is a text file, not DICOM\n" * 10, b"PK\x03\x04" + b"\x00" * 60],
    ids=["empty", "text", "zip-header"],
)
def test_unreadable_data_answers_c000_range(practice, device, tmp_path, content):
    path = tmp_path / "incoming" / "junk.dcm"
    path.parent.mkdir()
    path.write_bytes(content)

    with pytest.raises(Unreadable) as caught:
        store(path, practice, device)

    assert 0xC000 <= caught.value.status <= 0xCFFF
    assert not DicomInstance.objects.exists()
    assert spool_files() == []


def test_unwritable_spool_answers_a700_and_leaves_nothing(practice, device, tmp_path):
    # A regular file where the objects directory should be: mkdir fails even for root.
    settings.SPOOL_DIR.mkdir(parents=True)
    blocker = settings.SPOOL_DIR / "objects"
    blocker.write_bytes(b"")
    path = received(tmp_path, dicom_samples.intraoral())

    with pytest.raises(OutOfResources) as caught:
        store(path, practice, device)

    assert caught.value.status == 0xA700 == status.OUT_OF_RESOURCES
    assert "spool not writable" in str(caught.value)
    assert not DicomInstance.objects.exists()
    assert spool_files() == [blocker]


def test_database_failure_removes_the_spooled_file(practice, device, tmp_path):
    path = received(tmp_path, dicom_samples.intraoral())
    if connection.vendor == "postgresql":
        # Every write now fails in PostgreSQL itself; the savepoint's rollback undoes the SET.
        with pytest.raises(OutOfResources) as caught, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
            store(path, practice, device)
    else:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA query_only = ON")  # every write now fails in SQLite itself
        try:
            with pytest.raises(OutOfResources) as caught:
                store(path, practice, device)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA query_only = OFF")

    assert caught.value.status == 0xA700
    assert "database unavailable" in str(caught.value)
    assert not DicomInstance.objects.exists()
    assert spool_files() == [], "the fsynced copy must not outlive the missing row"


# The C-STORE handler, fed by pynetdicom's own DIMSE decoding (what the reactor thread runs).


@pytest.fixture
def receiving(monkeypatch):
    """pynetdicom as the listener configures it: data sets streamed into the spool."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", True)
    monkeypatch.setattr(dimse_messages, "NamedTemporaryFile", dimse_messages.NamedTemporaryFile)
    incoming.install()


def c_store(practice, device, ds, *, command_sop_uid: str | None = None, max_pdu: int = 16384):
    """Decode a C-STORE-RQ fragment by fragment, as pynetdicom's reactor does, then call the
    handler with the resulting event. Returns (status, temp path pynetdicom wrote to)."""
    cx = build_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    cx.context_id = 1
    assoc = Association(AE(), "acceptor")
    assoc._accepted_cx = {1: cx}
    assoc.nexrel = AssociationGrant(practice.pk, device.pk, "CARESTREAM", "192.0.2.7")
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = ds.SOPClassUID
    request.AffectedSOPInstanceUID = command_sop_uid or ds.SOPInstanceUID
    request.Priority = 2
    request.DataSet = BytesIO(body.getvalue())
    sent = C_STORE_RQ()
    sent.primitive_to_message(request)
    message = DIMSEMessage()
    complete = False
    for fragment in sent.encode_msg(1, max_pdu):
        complete = message.decode_msg(fragment, assoc)  # raising here aborts the association
    assert complete
    primitive = message.message_to_primitive()
    event = evt.Event(assoc, evt.EVT_C_STORE, {"request": primitive, "context": cx.as_tuple})
    return scp.handle_store(event), Path(event.dataset_path)


def test_handler_success_consumes_the_temp_file(
    practice, device, receiving, django_capture_on_commit_callbacks
):
    ds = dicom_samples.intraoral()
    with django_capture_on_commit_callbacks(execute=True):
        result, temp = c_store(practice, device, ds)

    assert result == status.SUCCESS
    assert temp.parent == settings.SPOOL_DIR / "tmp" / str(os.getpid())
    assert not temp.exists()
    row = DicomInstance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert row.calling_ae == "CARESTREAM"
    assert Path(row.spool_path).exists()
    assert [t["args"][0] for t in queued_tasks()] == [row.pk]


def test_handler_refusal_removes_the_temp_file(practice, device, receiving):
    ds = dicom_samples.intraoral()
    result, temp = c_store(practice, device, ds, command_sop_uid=generate_uid())

    assert result == status.DATASET_DOES_NOT_MATCH_SOP_CLASS
    assert not temp.exists(), "a refused object must not stay in the live process's temp dir"
    assert spool_files() == []
    assert not DicomInstance.objects.exists()


def test_handler_answers_a700_when_the_spool_cannot_take_the_object(practice, device, receiving):
    settings.SPOOL_DIR.mkdir(parents=True)
    (settings.SPOOL_DIR / "tmp").write_bytes(b"")  # no directory can be made for receiving

    result, temp = c_store(practice, device, dicom_samples.intraoral())

    assert result == status.OUT_OF_RESOURCES
    assert not temp.exists()
    assert not DicomInstance.objects.exists()


def test_device_not_allowed_to_store_is_refused_not_authorized(practice, device, receiving, caplog):
    DicomServer.objects.filter(pk=device.pk).update(allow_store=False)

    result, temp = c_store(practice, device, dicom_samples.intraoral())

    assert result == status.NOT_AUTHORIZED == 0x0124
    assert (
        "C-STORE from CARESTREAM refused with 0x0124: Storing images (C-STORE) is not allowed "
        "for DICOM device “Carestream CS 8100” (CARESTREAM): allow store is off." in caplog.text
    )
    assert not temp.exists()
    assert not DicomInstance.objects.exists()


def test_handler_bug_answers_c211_and_logs_the_traceback(db, receiving, caplog):
    """An unexpected failure (here: the practice vanished mid-association) is not a refusal
    we planned for: 0xC211, the traceback in the log, and the received bytes removed."""
    ds = dicom_samples.intraoral()
    practice = Practice.objects.create(name="Clinique fermée", ae_title="FERMEE")
    device = DicomServer.objects.create(practice=practice, name="Vatech", ae_title="VATECH")
    granted = SimpleNamespace(pk=practice.pk)  # what the association was granted for
    practice.delete()

    result, temp = c_store(granted, SimpleNamespace(pk=device.pk), ds)

    assert result == status.STORE_HANDLER_FAILURE == 0xC211
    (record,) = [r for r in caplog.records if r.name == "dicomnet.ingest.scp" and r.exc_info]
    assert "handler failure" in record.getMessage()
    assert record.exc_info[0].__name__ == "DoesNotExist"
    assert not temp.exists()
    assert spool_files() == []


@pytest.fixture
def full_disk_spool(tmp_path, settings) -> Path:
    """A 1 MB tmpfs mounted as the spool: writes fail with a real ENOSPC. Without the
    free-space guard (NEXREL_SPOOL_MIN_FREE_MB, which would refuse everything here first):
    these tests are about the disk itself running out."""
    settings.NEXREL_SPOOL_MIN_FREE_MB = 0
    mount_point = settings.SPOOL_DIR
    mount_point.mkdir(parents=True)
    if not shutil.which("mount"):
        pytest.skip("no mount command to create a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MB tmpfs (needs root/CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_stock_pynetdicom_aborts_on_a_full_disk(practice, device, full_disk_spool, monkeypatch):
    """Why ``dicomnet.net.incoming`` exists: ENOSPC happens while pynetdicom writes the received
    bytes (the rename later needs no space), raising in its reactor: an abort, no status."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", True)
    monkeypatch.setattr(tempfile, "tempdir", str(full_disk_spool))
    with pytest.raises(OSError) as caught:
        c_store(practice, device, dicom_samples.intraoral(size=1024))
    assert caught.value.errno == errno.ENOSPC
    for leftover in full_disk_spool.glob("tmp*.dcm"):  # what pynetdicom leaves behind
        leftover.unlink()


def test_full_disk_while_receiving_answers_a700_and_frees_the_space(
    practice, device, full_disk_spool, receiving, django_capture_on_commit_callbacks
):
    big = dicom_samples.intraoral(size=1024)  # 2 MB of pixels on a 1 MB filesystem

    result, temp = c_store(practice, device, big)

    assert result == status.OUT_OF_RESOURCES
    assert not temp.exists(), "the partial temp file is removed"
    assert spool_files() == []
    assert not DicomInstance.objects.exists()

    # The space came back: the next, small object on the same full-size spool succeeds.
    small = dicom_samples.intraoral()
    with django_capture_on_commit_callbacks(execute=True):
        result, _ = c_store(practice, device, small)
    assert result == status.SUCCESS
    row = DicomInstance.objects.get()
    assert Path(row.spool_path).is_relative_to(full_disk_spool / "objects")


def test_full_disk_does_not_stop_committing_an_object_already_received(
    practice, device, full_disk_spool, django_capture_on_commit_callbacks
):
    """The rename into the spool needs no space: once the bytes are in, Success is honest."""
    path = dicom_samples.write(dicom_samples.intraoral(), full_disk_spool / "tmp" / "1" / "in.dcm")
    with contextlib.suppress(OSError), open(full_disk_spool / "filler", "wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    with pytest.raises(OSError) as full:
        (full_disk_spool / "probe").write_bytes(b"\0" * 8192)
    assert full.value.errno == errno.ENOSPC

    with django_capture_on_commit_callbacks(execute=True):
        outcome = store(path, practice, device)

    assert Path(outcome.instance.spool_path).parent == full_disk_spool / "objects" / str(
        practice.pk
    )
    assert len(queued_tasks()) == 1
