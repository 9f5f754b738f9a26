"""The file pynetdicom streams an incoming C-STORE data set into, under the spool.

With ``STORE_RECV_CHUNKED_DATASET`` pynetdicom writes each P-DATA fragment to a
``NamedTemporaryFile`` from its reactor thread, before any handler runs. A full disk
raises ENOSPC there (not at our rename, which needs no space): pynetdicom then aborts the
association, the peer gets no status, and the partial file stays in the spool.

``IncomingFile`` replaces that temporary file:
1. a failed create or write is remembered instead of raised, and the partial bytes are
   truncated at once to give the space back;
2. the rest of the object is read off the wire and discarded, so the association goes on;
3. the C-STORE handler calls ``take_received(path)`` and answers Out of Resources
   (0xA700), removing the file.

It also hashes the bytes as they are written, so the handler does not read the file again
to hash it. While it is the only object arriving in the process, the hashing (SHA-256, which
releases the GIL) runs on a thread of its own, fragment after fragment in the order
written: the thread that reads the PDUs goes on to the next one meanwhile, and the last
fragment's hash overlaps the handler's header parse, which is done before it needs the
digest (``Received.digest``). With several arriving, the cores are busy already, and each
file is hashed in the writing thread (docs/benchmarks.md, issue 12).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


def spool_tmp_dir() -> Path:
    """Per-process directory for objects still arriving (pynetdicom's temp files)."""
    return settings.SPOOL_DIR / "tmp" / str(os.getpid())


_lock = threading.Lock()
# One thread for every file's hashing: its queue runs the updates in the order they were
# submitted, so each file's fragments are hashed in order. It keeps up with the network
# (a core hashes >1 GB/s) and never touches a file, only bytes already written.
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="incoming-sha256")
_files: weakref.WeakValueDictionary[str, IncomingFile] = weakref.WeakValueDictionary()


class IncomingFile:
    """Write-only file with the parts of ``NamedTemporaryFile`` that pynetdicom uses."""

    def __init__(self, *, suffix: str = ".dcm") -> None:
        self.error: OSError | None = None
        self._fd: int | None = None
        self._sha256 = hashlib.sha256()
        self._hashed: Future | None = None  # the last fragment's hash update
        self.size = 0
        tmp_dir = spool_tmp_dir()
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self._fd, self.name = tempfile.mkstemp(suffix=suffix, dir=tmp_dir)
        except OSError as exc:
            # pynetdicom needs a name; nothing exists under it.
            self.name = str(tmp_dir / f"not-created-{uuid.uuid4().hex}{suffix}")
            self.error = exc
        self.file = self  # pynetdicom calls ``.file.flush()``
        with _lock:
            _files[self.name] = self

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._fd is not None and self.error is None:
            self._hash(data)
            self.size += len(data)
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as exc:
                self.error = exc
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, 0)
                self.close()
        return len(data)

    def _hash(self, data: bytes | bytearray | memoryview) -> None:
        """On the hashing thread while this is the process's only file being received (the
        second core is idle); here when others are (every core is busy: a hand-over would
        only add work), once this file's earlier fragments are hashed, to keep the order."""
        if len(_files) <= 1:
            # ``data`` is never changed after the write (every caller hands a fresh buffer:
            # each PDU is read into a new one), so the hasher may read it later.
            self._hashed = _HASHER.submit(self._sha256.update, data)
            return
        if self._hashed is not None:
            self._hashed.result()
            self._hashed = None
        self._sha256.update(data)

    def wait_digest(self) -> tuple[str, int]:
        """(SHA-256 hex, size) of everything written, once the hasher has caught up."""
        if self._hashed is not None:
            self._hashed.result()
        return self._sha256.hexdigest(), self.size

    def flush(self) -> None:
        """Every write goes straight to the kernel; nothing is buffered here."""

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        self.close()


def incoming_file(*, delete: bool = False, mode: str = "wb", suffix: str = ".dcm") -> IncomingFile:
    """Drop-in for the ``NamedTemporaryFile(delete=False, mode="wb", suffix=...)`` call."""
    return IncomingFile(suffix=suffix)


@dataclass(frozen=True)
class Received:
    """What writing a received object came to."""

    error: OSError | None  # the write that failed: the file is not the object
    size: int
    _digest: Callable[[], tuple[str, int] | None]

    def digest(self) -> tuple[str, int] | None:
        """(SHA-256 hex, size) of the bytes written, when complete (else ``None``); waits for
        the hashing thread to finish this file."""
        return self._digest()


def _no_digest() -> None:
    return None


def take_received(path: Path | str) -> Received | None:
    """Close the received file at ``path``: its write error, or its size and digest.

    ``None`` for a path no ``IncomingFile`` wrote (an upload, or one already taken).
    """
    with _lock:
        received = _files.pop(str(path), None)
    if received is None:
        return None
    received.close()
    if received.error is not None:
        return Received(error=received.error, size=received.size, _digest=_no_digest)
    return Received(error=None, size=received.size, _digest=received.wait_digest)


def install() -> None:
    """Make pynetdicom stream C-STORE data sets into ``IncomingFile``s."""
    from pynetdicom import dimse_messages

    dimse_messages.NamedTemporaryFile = incoming_file  # type: ignore[assignment]
