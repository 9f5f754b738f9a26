"""The receiving writer (``dicomnet.net.incoming``): bytes written as they arrive, hashed on
the hashing thread in the order written, the digest waited for only when it is asked."""

from __future__ import annotations

import gc
import hashlib
import os
import threading
from pathlib import Path

import pytest

from dicomnet.net import incoming

FRAGMENT = 16 * 1024


@pytest.fixture
def spool(settings, tmp_path):
    settings.SPOOL_DIR = tmp_path / "spool"
    return settings.SPOOL_DIR


def receive(fragments: list[bytes]) -> tuple[Path, incoming.Received]:
    received = incoming.IncomingFile()
    for fragment in fragments:
        received.write(memoryview(bytearray(fragment)))  # as a PDU's data: a fresh buffer
    path = Path(received.name)
    taken = incoming.take_received(path)
    assert taken is not None
    return path, taken


def test_the_digest_is_of_every_byte_in_the_order_written(spool):
    fragments = [os.urandom(FRAGMENT) for _ in range(40)] + [b"tail"]
    path, taken = receive(fragments)

    whole = b"".join(fragments)
    assert path.read_bytes() == whole and path.is_relative_to(spool / "tmp")
    assert taken.error is None and taken.size == len(whole)
    assert taken.digest() == (hashlib.sha256(whole).hexdigest(), len(whole))
    assert incoming.take_received(path) is None  # taken once


def test_files_received_at_once_each_get_their_own_digest(spool):
    objects = {n: [os.urandom(FRAGMENT) for _ in range(25)] for n in range(4)}
    results: dict[int, incoming.Received] = {}

    def association(n: int) -> None:
        results[n] = receive(objects[n])[1]

    threads = [threading.Thread(target=association, args=(n,)) for n in objects]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for n, fragments in objects.items():
        whole = b"".join(fragments)
        assert results[n].digest() == (hashlib.sha256(whole).hexdigest(), len(whole))


def test_a_failed_write_has_no_digest(spool):
    received = incoming.IncomingFile()
    received.write(b"first")
    os.close(received._fd)  # the disk goes away under the writer
    received._fd = os.open(os.devnull, os.O_RDONLY)  # writing to it fails with EBADF
    received.write(b"second")
    taken = incoming.take_received(received.name)

    assert taken is not None and taken.error is not None
    assert taken.digest() is None


def test_hashed_aside_while_alone_and_in_the_writer_once_another_arrives(spool):
    gc.collect()  # files of earlier tests, never taken, wait for the cycle collector
    alone = incoming.IncomingFile()
    first = os.urandom(FRAGMENT)
    alone.write(bytearray(first))
    assert alone._hashed is not None  # on the hashing thread: the second core was idle

    other = incoming.IncomingFile()  # a second association starts an object
    second = os.urandom(FRAGMENT)
    alone.write(bytearray(second))
    assert alone._hashed is None  # hashed here, after the first fragment's hash was done
    other.write(b"other")

    assert incoming.take_received(alone.name).digest() == (
        hashlib.sha256(first + second).hexdigest(),
        2 * FRAGMENT,
    )
    assert incoming.take_received(other.name).digest() == (hashlib.sha256(b"other").hexdigest(), 5)
