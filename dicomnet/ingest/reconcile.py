"""Recover after a crash: nothing acknowledged is left unprocessed, nothing half-written stays.

1. Remove the temp directories of listener processes that are gone (partial objects:
   never acknowledged, so the sender still has them).
2. Re-enqueue every instance whose processing never finished.
3. Ingest complete spool files that have no row (fsynced and renamed, but the process
   died before the row committed): keeping them loses nothing, and dedup makes it safe.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from dicomnet.ingest.queues import Lane
from dicomnet.ingest.store import IngestError, enqueue_processing, store_instance
from dicomnet.models import DicomInstance
from patients.models import Practice

log = logging.getLogger("dicomnet.ingest.reconcile")


@dataclass
class ReconcileReport:
    removed_partials: int = 0
    requeued: int = 0
    recovered_orphans: int = 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reconcile_spool(*, min_age: dt.timedelta = dt.timedelta(0)) -> ReconcileReport:
    report = ReconcileReport()
    tmp_root = settings.SPOOL_DIR / "tmp"
    if tmp_root.is_dir():
        for entry in tmp_root.iterdir():
            if (
                entry.name.isdigit()
                and int(entry.name) != os.getpid()
                and not _pid_alive(int(entry.name))
            ):
                report.removed_partials += sum(1 for p in entry.iterdir() if p.is_file())
                shutil.rmtree(entry, ignore_errors=True)

    cutoff = timezone.now() - min_age
    pending = DicomInstance.objects.filter(
        state=DicomInstance.State.RECEIVED, received_at__lte=cutoff
    ).values_list("pk", flat=True)
    # A list, not .iterator(): django-q2's ORM broker closes the connection between
    # enqueues (close_old_connections, outside a transaction), under an open cursor.
    for pk in list(pending):
        enqueue_processing(pk, lane=Lane.BULK)  # recovery must not delay what arrives meanwhile
        report.requeued += 1

    known = set(DicomInstance.objects.exclude(spool_path="").values_list("spool_path", flat=True))
    objects_root = settings.SPOOL_DIR / "objects"
    min_age_s = max(min_age.total_seconds(), 0)
    # ``*.recover``: an orphan this function was recovering when the process died.
    patterns = ("*/*.dcm", "*/*.recover") if objects_root.is_dir() else ()
    for path in [p for pattern in patterns for p in objects_root.glob(pattern)]:
        if str(path) in known or time.time() - path.stat().st_mtime < min_age_s:
            continue
        if _recover_orphan(path):
            report.recovered_orphans += 1
    if report.removed_partials or report.requeued or report.recovered_orphans:
        log.info("reconcile: %s", report)
    return report


def _recover_orphan(path: Path) -> bool:
    practice = (
        Practice.objects.filter(pk=int(path.parent.name)).first()
        if (path.parent.name.isdigit())
        else None
    )
    if practice is None:
        log.error("spool file %s belongs to no practice; left in place", path)
        return False
    # store_instance renames into a fresh spool name; move it out of the way first.
    staging = path.with_suffix(".recover")
    if path != staging:
        os.rename(path, staging)
    try:
        store_instance(
            staging,
            practice=practice,
            server=None,
            calling_ae="",
            peer_address="recovered from spool",
        )
    except IngestError as exc:
        log.error("spool file %s could not be recovered: %s", path, exc)
        with contextlib.suppress(OSError):
            os.rename(staging, path.with_suffix(".bad"))
        return False
    return True
