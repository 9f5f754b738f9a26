"""The listener's SQLite writers take turns on a lock that hands over at once
(``dicomnet.ingest.writer_turn``): another process holding it, and this process's threads."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from django.db import connection, transaction

from dicomnet.ingest.writer_turn import writer_turn

pytestmark = pytest.mark.sqlite_only("writer_turn takes turns on SQLite's file; elsewhere a no-op")

HOLD = 0.6  # seconds


def lock_path() -> str:
    return f"{connection.settings_dict['NAME']}.writer-turn"


def hold_lock(seconds: float) -> subprocess.Popen:
    """Another process holding the turn for ``seconds``, once it has said so."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            f"time.sleep({seconds})\n",
            lock_path(),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


@pytest.mark.django_db(transaction=True)
def test_a_writer_waits_for_another_process_and_goes_as_soon_as_it_is_done():
    holder = hold_lock(HOLD)
    started = time.monotonic()
    with writer_turn():
        waited = time.monotonic() - started
    holder.wait(5)
    # Exits right after its sleep; SQLite's busy handler would add up to 25 ms per retry.
    assert HOLD * 0.7 <= waited < HOLD + 0.5


@pytest.mark.django_db(transaction=True)
def test_threads_of_one_process_take_turns():
    inside: list[int] = []
    overlaps: list[int] = []

    def write(n: int) -> None:
        for _ in range(20):
            with writer_turn():
                inside.append(n)
                if len(inside) > 1:
                    overlaps.append(n)
                time.sleep(0.001)
                inside.remove(n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert overlaps == []


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_it_takes_no_turn():
    """The connection may already hold SQLite's lock there: waiting would risk a deadlock."""
    holder = hold_lock(5)
    try:
        started = time.monotonic()
        with transaction.atomic(), writer_turn():
            pass
        assert time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait()
