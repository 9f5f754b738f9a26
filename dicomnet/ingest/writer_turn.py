"""Writers to SQLite take turns on a lock that wakes the next one at once.

SQLite lets one writer at a time. The others wait in its busy handler, which sleeps 1, 2,
5, 10, 15, 20, 25… ms between tries whatever happens meanwhile: with four associations
storing small objects, each row's commit (a few ms) made the next writer sleep 8 ms or
more, and four associations stored no more than one (docs/benchmarks.md, issue 12).
Here ``store_instance``'s row commits queue instead on a ``threading.Lock`` (the threads of
one process) and an ``flock`` on a file beside the database (the listener's processes, and
any other caller: STOW-RS, uploads); both hand over on release. Every other write (the
workers' pipeline, the web pages) keeps SQLite's handler.

Only for SQLite, and only outside a transaction: inside one, this connection may already
hold SQLite's lock, and waiting here for a process that waits for it would deadlock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connections

_thread_lock = threading.Lock()
_files: dict[str, int] = {}  # lock file path -> this process's descriptor


def _lock_fd(database: str) -> int:
    path = f"{database}.writer-turn"
    fd = _files.get(path)
    if fd is None:
        fd = _files[path] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return fd


@contextlib.contextmanager
def writer_turn(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Hold the turn to write to ``using``'s SQLite file (a no-op for other databases)."""
    connection = connections[using]
    database = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or connection.in_atomic_block or database == ":memory:":
        yield
        return
    with _thread_lock:
        fd = _lock_fd(database)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
