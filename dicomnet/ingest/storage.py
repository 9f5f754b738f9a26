"""Where bytes live: the local spool (durable receipt) and final storage (django-storages).

Keys are chosen here from database ids, never from UIDs sent by a peer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from dicomnet.models import DicomInstance
from dicomnet.net.incoming import spool_tmp_dir


def spool_objects_dir(practice_id: int) -> Path:
    return settings.SPOOL_DIR / "objects" / str(practice_id)


def fsync_path(path: Path) -> None:
    """Flush a file's bytes, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def spool_destination(practice_id: int) -> Path:
    """A fresh name in the practice's spool, for ``os.rename`` of a received object.

    The object must already be fsynced (``fsync_path``) and on the same filesystem as the
    spool (the listener puts its temp directory under the spool for this reason). Its new
    entry is durable once the directory is fsynced (``fsync_path(dest.parent)``), which
    ``store_instance`` does while it commits the row.
    """
    dest_dir = spool_objects_dir(practice_id)
    dest_dir.mkdir(parents=True, exist_ok=True)
    return dest_dir / f"{uuid.uuid4().hex}.dcm"


def copy_into_spool_tmp(fileobj, *, chunk: int = 1024 * 1024) -> Path:
    """Write an uploaded or fetched file into the spool's temp area (for the same ingest path)."""
    tmp_dir = spool_tmp_dir()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(fileobj, out, chunk)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def instance_key(instance: DicomInstance, suffix: str = ".dcm") -> str:
    return (
        f"{instance.practice_id}/{instance.study_id}/{instance.series_id}/"
        f"{instance.pk}-v{instance.version}{suffix}"
    )


def put_file(key: str, path: Path) -> None:
    with open(path, "rb") as fh:
        saved = default_storage.save(key, File(fh))
    if saved != key:  # never accept a silent rename
        raise RuntimeError(f"storage renamed {key!r} to {saved!r}")


def put_bytes(key: str, data: bytes) -> None:
    saved = default_storage.save(key, ContentFile(data))
    if saved != key:
        raise RuntimeError(f"storage renamed {key!r} to {saved!r}")


@contextlib.contextmanager
def local_copy(instance: DicomInstance) -> Iterator[Path]:
    """A local path to the instance's bytes: its spool file, or a temp copy from storage."""
    if instance.spool_path and Path(instance.spool_path).exists():
        yield Path(instance.spool_path)
        return
    if not instance.storage_key:
        raise FileNotFoundError(f"instance {instance.pk} has neither a spool file nor a key")
    tmp_dir = spool_tmp_dir()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(instance.storage_key, "rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
