"""Durable receipt of one DICOM object: the contract behind a C-STORE Success.

``store_instance`` returns only once
1. the bytes are fsynced and atomically renamed into the spool, and the spool directory
   fsynced (the new name is durable),
2. the ``DicomInstance`` row is committed, and
3. its processing task is enqueued with that commit (``enqueue_at_commit``).
Any failure raises an ``IngestError`` carrying the DIMSE status to answer with.

Nothing waits that need not (docs/benchmarks.md, issue 12): the file's fsync runs while
the header is parsed and the row and its task are written in their transaction (not yet
committed); the rename into the spool comes next, in that transaction, once the fsync is
done; then the directory's fsync and the commit run at the same time (the fsync on a
thread), so the two flushes overlap instead of adding up. The commits of concurrent calls
take turns (``writer_turn``). The bytes are fsynced and renamed before the row is
committed, so a worker never sees a row without its file. A crash (of the machine) between
the commit and the directory's flush can leave a row whose spool file is gone: no Success
was sent, so the sender sends again, and that copy takes the row's place
(``_record_once``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    InterfaceError,
    transaction,
)

from dicomnet.dimse import status
from dicomnet.ingest import queues
from dicomnet.ingest.parsing import (
    InvalidUids,
    UnreadableDicom,
    check_uids,
    read_store_header,
)
from dicomnet.ingest.prepared import insert_row
from dicomnet.ingest.storage import fsync_path, spool_destination
from dicomnet.ingest.writer_turn import writer_turn
from dicomnet.models import DicomInstance, DicomServer
from dicomnet.ops_status import spool_space
from patients.models import Practice

log = logging.getLogger("dicomnet.ingest.store")


class IngestError(Exception):
    status: int = status.PROCESSING_FAILURE


class InvalidDataset(IngestError):
    status = status.DATASET_DOES_NOT_MATCH_SOP_CLASS


class Unreadable(IngestError):
    status = status.CANNOT_UNDERSTAND


class OutOfResources(IngestError):
    status = status.OUT_OF_RESOURCES


@dataclass(frozen=True)
class StoreOutcome:
    instance: DicomInstance
    duplicate: bool  # identical bytes already held: no new row
    conflict: bool  # same UID, different bytes: kept as a new, flagged version


_SYNC_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="spool-fsync")


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def enqueue_processing(instance_id: int, *, lane: queues.Lane = queues.Lane.INTERACTIVE) -> None:
    """Queue the pipeline for an instance, in the interactive or the bulk lane (queues.py)."""
    from django_q.tasks import async_task

    async_task(
        "dicomnet.ingest.pipeline.process_instance",
        instance_id,
        task_name=f"process-instance-{instance_id}",
        group="ingest",
        broker=queues.broker(lane),
    )


def enqueue_at_commit(instance_id: int, *, lane: queues.Lane) -> None:
    """Queue processing so that the task exists exactly when the committed row does.

    With the ORM broker in the same database, the task row is written in the current
    transaction: one commit (one fsync) for both, and never a row without its task.
    Another broker (Redis) is sent the task once the transaction has committed.
    """
    q_cluster = settings.Q_CLUSTER
    if q_cluster.get("orm") == DEFAULT_DB_ALIAS and "redis" not in q_cluster:
        enqueue_processing(instance_id, lane=lane)
    else:
        transaction.on_commit(lambda: enqueue_processing(instance_id, lane=lane), robust=False)


def check_spool_headroom() -> None:
    """Refuse a new object while the spool's disk is nearly full (``NEXREL_SPOOL_MIN_FREE_MB``).

    The object itself is already on that disk (in the spool's temp area): refused, it is
    removed and the sender keeps its copy; accepted past the headroom, the next write to fail
    could be the database's or a worker's.
    """
    space = spool_space()
    if space.refusing:
        raise OutOfResources(
            f"spool disk nearly full: {space.free_bytes // (1024 * 1024)} MB free, below "
            f"NEXREL_SPOOL_MIN_FREE_MB={settings.NEXREL_SPOOL_MIN_FREE_MB}"
        )


def store_instance(
    path: Path,
    *,
    practice: Practice,
    server: DicomServer | None,
    calling_ae: str = "",
    peer_address: str = "",
    expected_sop_instance_uid: str | None = None,
    expected_sop_class_uid: str | None = None,
    position: int = 1,
    digest: Callable[[], tuple[str, int] | None] | None = None,
) -> StoreOutcome:
    """Make the object at ``path`` durable and queue its processing. See the module doc.

    ``path`` is consumed: on success it has been moved into the spool; on failure the
    caller removes it. ``position`` is the object's rank in its association or upload,
    which with its SOP class picks the processing lane (``queues.lane_for``). ``digest``
    gives the file's (SHA-256, size) when its writer hashed it (``incoming.Received.digest``),
    called once the header is parsed, so the last of the hashing overlaps the parse.
    """
    # Flush the bytes to disk while we parse and hash them: fsync and hashing both run
    # without the GIL, so durability costs little extra time.
    synced = _SYNC_POOL.submit(fsync_path, path)
    try:
        # The UIDs and the transfer syntax alone, with read_header's checks: the worker reads
        # the whole header later (parsing.read_store_header).
        ds = read_store_header(path)
        check_uids(
            ds,
            expected_sop_instance_uid=expected_sop_instance_uid,
            expected_sop_class_uid=expected_sop_class_uid,
        )
        known = digest() if digest is not None else None
        sha256, size = known if known is not None else sha256_of(path)
    except UnreadableDicom as exc:
        raise Unreadable(str(exc)) from exc
    except InvalidUids as exc:
        raise InvalidDataset(str(exc)) from exc
    except OSError as exc:
        raise OutOfResources(f"cannot read received object: {exc}") from exc

    fields: dict[str, Any] = dict(
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=str(ds.file_meta.get("TransferSyntaxUID", "")),
        size=size,
        sha256=sha256,
        calling_ae=calling_ae[:16],
        peer_address=peer_address[:64],
        server=server,
    )
    try:
        entry = SpoolEntry(path, spool_destination(practice.pk), synced)
    except OSError as exc:
        raise _spool_refusal(exc) from exc
    try:
        lane = queues.lane_for(sop_class_uid=fields["sop_class_uid"], position=position)
        outcome = _record(
            practice,
            sop_uid=str(ds.SOPInstanceUID),
            spooled=entry.dest,
            fields=fields,
            lane=lane,
            before_commit=entry.make,
        )
    except (DatabaseError, InterfaceError) as exc:  # IntegrityError is a DatabaseError
        _discard(entry.dest)
        raise OutOfResources(f"database unavailable: {exc}") from exc
    except Exception:
        _discard(entry.dest)
        raise
    try:
        entry.wait_flushed()
    except OSError as exc:
        # The row is committed and its file in place, but not known durable: no Success.
        # A resend is a duplicate of that row (or takes its place if the file is lost).
        raise OutOfResources(f"spool not writable: {exc}") from exc
    if outcome.duplicate and outcome.instance.spool_path != str(entry.dest):
        _discard(entry.dest)
    return outcome


def _spool_refusal(exc: OSError) -> OutOfResources:
    """The spool's disk or directory refused a write: 0xA700, saying which."""
    reason = "disk full" if exc.errno == errno.ENOSPC else f"spool not writable: {exc}"
    return OutOfResources(reason)


class SpoolEntry:
    """The received file's move to ``dest`` in the spool, made once, just before the commit."""

    def __init__(self, path: Path, dest: Path, synced: Future) -> None:
        self.path, self.dest, self._synced = path, dest, synced
        self._flushed: Future | None = None

    def make(self) -> None:
        """Once the file's fsync is done: the headroom check, the rename, and the directory's
        fsync started (``wait_flushed``)."""
        if self._flushed is not None:  # a retried transaction: already in place
            return
        try:
            self._synced.result()
            check_spool_headroom()
            os.rename(self.path, self.dest)
        except OSError as exc:
            raise _spool_refusal(exc) from exc
        # The new name is flushed while the row is committed (see the module doc).
        self._flushed = _SYNC_POOL.submit(fsync_path, self.dest.parent)

    def wait_flushed(self) -> None:
        assert self._flushed is not None, "make() runs before every commit"
        self._flushed.result()


def _record(
    practice: Practice,
    *,
    sop_uid: str,
    spooled: Path,
    fields: dict,
    lane: queues.Lane,
    before_commit: Callable[[], None],
) -> StoreOutcome:
    for attempt in range(3):
        try:
            with writer_turn(), transaction.atomic():
                outcome = _record_once(
                    practice, sop_uid=sop_uid, spooled=spooled, fields=fields, lane=lane
                )
                before_commit()
                return outcome
        except IntegrityError:
            # Another association stored the same UID at the same moment: look again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _record_once(
    practice: Practice, *, sop_uid: str, spooled: Path, fields: dict, lane: queues.Lane
) -> StoreOutcome:
    first = _insert_first_version(practice, sop_uid=sop_uid, spooled=spooled, fields=fields)
    if first is not None:
        enqueue_at_commit(first.pk, lane=lane)
        return StoreOutcome(first, duplicate=False, conflict=False)
    versions = list(
        DicomInstance.objects.for_practice(practice)
        .filter(sop_instance_uid=sop_uid)
        .order_by("-version")
    )
    same = next((v for v in versions if v.sha256 == fields["sha256"]), None)
    if same is not None and _spool_file_lost(same):
        # Committed, but its spool entry never reached the disk (the machine crashed before
        # the directory's flush, so no Success was sent): this copy takes its place.
        log.warning("SOP %s: its spool file was lost; the copy received now replaces it", sop_uid)
        same.spool_path = str(spooled)
        same.save(update_fields=["spool_path"])
    if same is not None:
        if same.state != DicomInstance.State.PROCESSED:
            # Its task may have been lost (the reason the peer is resending): queue again.
            enqueue_at_commit(same.pk, lane=lane)
        log.info(
            "duplicate SOP %s from %s: identical bytes, no new row",
            sop_uid,
            fields["calling_ae"] or "upload",
        )
        return StoreOutcome(same, duplicate=True, conflict=False)

    conflict = bool(versions)
    instance = DicomInstance.objects.create(
        practice=practice,
        sop_instance_uid=sop_uid,
        version=(versions[0].version + 1) if versions else 1,
        conflict=conflict,
        spool_path=str(spooled),
        **fields,
    )
    if conflict:
        log.warning(
            "SOP %s received again with different bytes: kept as version %d and flagged",
            sop_uid,
            instance.version,
        )
    enqueue_at_commit(instance.pk, lane=lane)
    return StoreOutcome(instance, duplicate=False, conflict=conflict)


def _insert_first_version(
    practice: Practice, *, sop_uid: str, spooled: Path, fields: dict
) -> DicomInstance | None:
    """The row of a UID this practice never had, or ``None`` if it had one.

    Most objects are new: inserting version 1 straight away lets the unique constraint on
    (practice, UID, version) answer, and spares the SELECT of earlier versions (a third of
    the row's time on a CBCT slice, docs/benchmarks.md). The statement is prepared once
    (``prepared.insert_row``): ``ON CONFLICT DO NOTHING`` leaves the transaction usable for
    the full path, with no savepoint, and none of ``save()``'s per-object cost.
    """
    values = {k: v for k, v in fields.items() if k != "server"}
    server = fields.get("server")
    instance = insert_row(
        DicomInstance,
        {
            **values,
            "practice_id": practice.pk,
            "server_id": server.pk if server is not None else None,
            "sop_instance_uid": sop_uid,
            "version": 1,
            "conflict": False,
            "spool_path": str(spooled),
        },
    )
    if instance is not None:  # as create() leaves them: no query to reach either
        instance.practice, instance.server = practice, server
    return instance


def _spool_file_lost(instance: DicomInstance) -> bool:
    """Not yet moved to storage, and its spool file is not there."""
    return (
        not instance.storage_key
        and bool(instance.spool_path)
        and not os.path.exists(instance.spool_path)
    )


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
