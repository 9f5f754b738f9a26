"""Helpers of the tests, and the fixtures that run real subprocesses (listener, django-q2
cluster) sharing the test database. The root ``conftest.py`` makes these fixtures
available everywhere; import the helpers from here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from nexrel import supervisor

ROOT = Path(__file__).resolve().parent.parent
PYDICOM_TEST_FILES = Path(__import__("pydicom").__file__).parent / "data" / "test_files"


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """PBKDF2 with one iteration (the real one costs about a second per password). Its hashes
    are still ``pbkdf2_sha256``, so the subprocesses (web server, with the real hashers)
    accept the passwords set in the test process."""

    iterations = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    return free_port()


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port} after {timeout}s")


def shared_database_url() -> str:
    """The test database as a DATABASE_URL, for a subprocess to share it: the SQLite file, or
    this xdist worker's PostgreSQL database (``make test-postgres``)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    if connection.vendor == "postgresql":
        password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
        host = f"{quote(db['USER'], safe='')}{password}@{db['HOST']}:{db['PORT'] or 5432}"
        return f"postgres://{host}/{quote(db['NAME'], safe='')}"
    raise NotImplementedError(f"no subprocess URL for {connection.vendor}")


class ManagedProcess:
    """A `manage.py` subprocess using the test database and the test's data dir."""

    def __init__(self, args: list[str], *, data_dir: Path, env: dict[str, str] | None = None):
        self.args = args
        self.env = {
            **os.environ,
            "DATABASE_URL": shared_database_url(),
            "NEXREL_DATA_DIR": str(data_dir),
            "NEXREL_SPOOL_DIR": str(data_dir / "spool"),
            "NEXREL_S3_BUCKET": "",
            "PYTHONUNBUFFERED": "1",
            "LANGUAGE_CODE": "en",
            # One listener process unless a test asks for more: limits and logs are per process.
            "DICOM_LISTENER_PROCESSES": "1",
            # The workers' every-minute alert schedule would add notices to the tests' own.
            "NEXREL_ALERTS_ENABLED": "false",
            **(env or {}),
        }
        self.log_path = data_dir / f"{args[0]}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        # Its own process group, so stop() also reaches the children it forks (qcluster's
        # workers, the listener's --processes children) if it dies without reaping them.
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def run(self, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """Run a one-shot command (migrate, seed_demo) to completion with the same env."""
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *self.args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc:
            # group: orphans the process left in its session go too
            supervisor.stop(self.proc, sig=sig, timeout=timeout, group=True)
        if getattr(self, "_log", None):
            self._log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def listener_factory(transactional_db, practice, isolated_data) -> Iterator:
    """Start `dicom_listener` subprocesses on free ports; stopped at the end of the test."""
    started: list[ManagedProcess] = []

    def start(
        port: int | None = None,
        env: dict[str, str] | None = None,
        *,
        tls_port: int | None = None,
        plain: bool = True,
    ) -> tuple[ManagedProcess, int]:
        """``tls_port``: TLS there too (``env`` names the certificates); ``plain=False``:
        only there (DICOM_PLAIN_PORT_ENABLED=false)."""
        port = port or free_port()
        args = ["dicom_listener", "--port", str(port), "--address", "127.0.0.1"]
        if tls_port:
            args += ["--tls-port", str(tls_port)]
        if not plain:
            env = {**(env or {}), "DICOM_PLAIN_PORT_ENABLED": "false"}
        proc = ManagedProcess(args, data_dir=isolated_data, env=env).start()
        started.append(proc)
        try:
            for listening in ([port] if plain else []) + ([tls_port] if tls_port else []):
                wait_for_port(listening)
        except TimeoutError:
            proc.stop()
            raise AssertionError(f"listener did not start:\n{proc.output()}") from None
        return proc, port

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def listener(listener_factory) -> tuple[ManagedProcess, int]:
    return listener_factory()


@pytest.fixture
def small_spool(isolated_data) -> Iterator[Callable[[int], Path]]:
    """``small_spool(size_mb)``: the test's spool directory (where the listener and worker
    subprocesses put theirs) becomes a tmpfs of that size, so a full disk is a real ENOSPC.
    Unmounted at the end: request it before the processes that use it, so they stop first."""
    spool = isolated_data / "spool"
    mounted: list[Path] = []

    def mount(size_mb: int) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a small tmpfs for the spool needs root (mount)")
        spool.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(spool)],
            check=True,
            capture_output=True,
        )
        mounted.append(spool)
        return spool

    yield mount
    for path in mounted:
        subprocess.run(["umount", "--lazy", str(path)], check=False, capture_output=True)


@pytest.fixture
def worker(transactional_db, isolated_data) -> Iterator[ManagedProcess]:
    """A real django-q2 cluster (ORM broker) processing the queue."""
    proc = ManagedProcess(["qcluster"], data_dir=isolated_data, env={"Q_WORKERS": "1"}).start()
    yield proc
    proc.stop(timeout=5)


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def peer_server(practice, port: int, ae_title: str, **flags):
    """A DICOM server of ``practice`` on 127.0.0.1:``port`` (find, move and get allowed
    unless ``flags`` say otherwise)."""
    from dicomnet.models import DicomServer

    defaults = dict(allow_find=True, allow_move=True, allow_get=True)
    return DicomServer.objects.create(
        practice=practice,
        name=f"Peer {ae_title}",
        ae_title=ae_title,
        host="127.0.0.1",
        port=port,
        **{**defaults, **flags},
    )
