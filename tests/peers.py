"""Real throwaway peers for integration tests (the root conftest.py imports the fixtures).

Each peer runs from a temp directory on 127.0.0.1 and a free port, and is stopped with a
bounded wait. A fixture skips only when its program is not installed:
- ``postgres_server``: a fresh PostgreSQL cluster (as an unprivileged user when we are root,
  since postgres refuses to run as root), which a test may ``stop()`` and ``start()`` again;
  ``postgres_database`` gives a test its own database, ``postgres_seeded_database`` its own
  copy of one migrated and seeded once per session;
- ``redis_server``: a Redis server without persistence;
- ``s3_server``: a moto S3 server; ``s3_bucket`` gives a test its own bucket in ca-central-1;
- ``echo_peer``: DCMTK ``storescp`` as the AE ECHOPEER, answering C-ECHO.

A test using one is an integration test: conftest.py marks it so (``make test-unit`` leaves
it out).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nexrel.supervisor import stop
from tests.fixtures import free_port, wait_for_port

S3_REGION = "ca-central-1"
S3_ACCESS_KEY = "nexrel-test"
S3_SECRET_KEY = "nexrel-test-secret"
POSTGRES_RUN_AS = ("postgres", "nexrel-test")  # tried in order when we are root


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Send ``sig``, wait up to ``timeout`` seconds, then SIGKILL (``nexrel.supervisor.stop``)."""
    stop(proc, sig=sig, timeout=timeout)


def _start(
    argv: list[str], *, log_path: Path, cwd: Path, user: str | None = None
) -> subprocess.Popen:
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(
            argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, user=user, start_new_session=True
        )
    finally:
        log.close()  # the child holds its own descriptor


def _wait_ready(proc: subprocess.Popen, port: int, log_path: Path, what: str) -> None:
    try:
        wait_for_port(port, timeout=30)
    except TimeoutError:
        stop_process(proc, signal.SIGKILL)
        raise RuntimeError(
            f"{what} did not start:\n{log_path.read_text(errors='replace')}"
        ) from None


# PostgreSQL ---------------------------------------------------------------------------------


def _postgres_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _postgres_user() -> str | None:
    """None when we may run postgres ourselves; otherwise an unprivileged user to run it as."""
    if os.geteuid() != 0:
        return None
    for name in POSTGRES_RUN_AS:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "nexrel-test"],
        check=True,
        capture_output=True,
    )
    return "nexrel-test"


@dataclass
class PostgresServer:
    """A running cluster; ``stop()`` and ``start()`` take it down and bring it back on the
    same port with its data (a fault test's database outage)."""

    host: str
    port: int
    user: str = "postgres"
    argv: list[str] = field(default_factory=list, repr=False)
    root: Path | None = field(default=None, repr=False)
    run_as: str | None = field(default=None, repr=False)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, dbname: str) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def start(self) -> None:
        assert self.root is not None and (self.proc is None or self.proc.poll() is not None)
        log_path = self.root / "postgres.log"
        self.proc = _start(self.argv, log_path=log_path, cwd=self.root, user=self.run_as)
        _wait_ready(self.proc, self.port, log_path, "postgres")
        self._wait_accepting(log_path)

    def _wait_accepting(self, log_path: Path) -> None:
        """The port opens before the server takes sessions ("the database system is
        starting up"): wait for one to succeed."""
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"postgres takes no sessions:\n{log_path.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open sessions are cut, as when the server goes away."""
        if self.proc is not None:
            stop_process(self.proc, signal.SIGINT)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    user = _postgres_user()
    # Not pytest's tmp_path: that is private to us, and postgres may run as another user.
    root = Path(tempfile.mkdtemp(prefix="nexrel-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if user:
        for path in (root, sockets):
            shutil.chown(path, user=user)
    init = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
        cwd=root,
        user=user,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    port = free_port()
    argv = [
        str(bin_dir / "postgres"),
        "-D",
        str(data),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-k",
        str(sockets),
        # Throwaway data: durability off, so the suite stays fast.
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=200",
    ]
    server = PostgresServer(host="127.0.0.1", port=port, argv=argv, root=root, run_as=user)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> str:
    """A fresh, empty database for one test; returns its URL."""
    return postgres_server.create_database(f"nexrel_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def postgres_seeded_template(postgres_server: PostgresServer, tmp_path_factory) -> str:
    """A database migrated and seeded (``seed_demo --no-images``) once per session, by the
    commands a deployment runs; its name. Migrating costs tens of seconds on a busy machine."""
    from tests.fixtures import ManagedProcess

    name = f"nexrel_seeded_{uuid.uuid4().hex[:8]}"
    env = {"DATABASE_URL": postgres_server.create_database(name), "REDIS_URL": ""}
    data_dir = tmp_path_factory.mktemp("seeded")
    for command in (("migrate", "--noinput"), ("seed_demo", "--no-images")):
        done = ManagedProcess(list(command), data_dir=data_dir, env=env).run(timeout=300)
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return name


@pytest.fixture
def postgres_seeded_database(postgres_server: PostgresServer, postgres_seeded_template: str) -> str:
    """A copy of the seeded database for one test (the demo practice, no images); its URL."""
    import psycopg

    name = f"nexrel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_seeded_template}"')
    return postgres_server.url(name)


# Redis --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    """A Redis server without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    root = tmp_path_factory.mktemp("redis")
    port = free_port()
    log_path = root / "redis.log"
    proc = _start(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
        ],
        log_path=log_path,
        cwd=root,
    )
    try:
        _wait_ready(proc, port, log_path, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)


# S3 (moto) ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    region: str = S3_REGION
    access_key: str = S3_ACCESS_KEY
    secret_key: str = S3_SECRET_KEY

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region}
        )
        return name


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """A moto S3 server as a separate process, so it is reached over real HTTP."""
    if importlib.util.find_spec("moto.server") is None:
        pytest.skip("moto[server] is not installed")
    root = tmp_path_factory.mktemp("moto")
    port = free_port()
    log_path = root / "moto.log"
    proc = _start(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        log_path=log_path,
        cwd=root,
    )
    try:
        _wait_ready(proc, port, log_path, "moto server")
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
    finally:
        stop_process(proc)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh bucket in ca-central-1 for one test."""
    return s3_server.create_bucket(f"nexrel-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def s3_settings(settings, s3_server: S3Server, s3_bucket: str) -> str:
    """Default storage is S3Storage, with the options settings.py builds from the env;
    yields the bucket."""
    from nexrel.settings import s3_storage

    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(
            bucket=s3_bucket,
            region=s3_server.region,
            endpoint_url=s3_server.endpoint_url,
            access_key=s3_server.access_key,
            secret_key=s3_server.secret_key,
        ),
    }
    return s3_bucket


# DCMTK --------------------------------------------------------------------------------------


@pytest.fixture
def echo_peer(tmp_path: Path) -> Iterator[int]:
    """DCMTK storescp as ECHOPEER on a free port (it answers C-ECHO); yields the port."""
    if not shutil.which("storescp"):
        pytest.skip("DCMTK not installed")
    port = free_port()
    out = tmp_path / "storescp"
    out.mkdir()
    proc = _start(
        ["storescp", "-aet", "ECHOPEER", "-od", str(out), str(port)],
        log_path=tmp_path / "storescp.log",
        cwd=tmp_path,
    )
    try:
        _wait_ready(proc, port, tmp_path / "storescp.log", "storescp")
        yield port
    finally:
        stop_process(proc)
