"""The PostgreSQL pass's cluster (tests/pg_cluster.py): where it listens, and that it is gone
however the wrapped command ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests import pg_cluster
from tests.fixtures import ROOT

pytestmark = pytest.mark.skipif(pg_cluster.bin_dir() is None, reason="PostgreSQL not installed")

SHOW = "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories')"


def test_listens_on_loopback_and_its_own_socket_and_stop_removes_it():
    cluster = pg_cluster.start()
    try:
        with psycopg.connect(cluster.url("postgres")) as db:
            assert db.execute(SHOW).fetchone() == ("127.0.0.1", str(cluster.socket_dir))
        assert (cluster.socket_dir / f".s.PGSQL.{cluster.port}").exists()
    finally:
        cluster.stop()
    assert cluster.proc.poll() is not None
    assert not cluster.root.exists()


def _wrapped(script: str) -> subprocess.Popen:
    """``python -m tests.pg_cluster -- python -c script``; the script prints the cluster's
    directory (from its log line) and DATABASE_URL."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pg_cluster", "--", sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _cluster_dir(first_line: str) -> Path:
    return Path(first_line.rsplit("(", 1)[1].rstrip(")\n"))


def test_the_command_gets_the_database_and_a_failure_still_stops_the_cluster():
    script = (
        "import os, sys, psycopg\n"
        "psycopg.connect(os.environ['DATABASE_URL']).close()\n"
        "print(os.environ['DATABASE_URL'], flush=True)\n"
        "sys.exit(3)\n"
    )
    proc = _wrapped(script)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3
    first, url = out.splitlines()[:2]
    assert url.startswith("postgres://postgres@127.0.0.1:") and url.endswith("/nexrel")
    assert not _cluster_dir(first).exists()


def test_sigterm_stops_the_command_and_the_cluster():
    proc = _wrapped("import time; print('ready', flush=True); time.sleep(60)")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert proc.stdout.readline().strip() == "ready"
    root = _cluster_dir(first)
    pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert not root.exists()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return "zombie" not in Path(f"/proc/{pid}/status").read_text()
