"""Real throwaway peers for integration tests (the root conftest.py imports the fixtures).

Each peer runs from a temp directory on 127.0.0.1 and a free port, and is stopped with a
bounded wait. A fixture skips only when its program is not installed:
- ``postgres_server``: a PostgreSQL cluster (tests/pg_cluster.py: a fresh one, or the one the
  suite runs on in ``make test-postgres``); ``postgres_database`` gives a test its own database,
  ``postgres_seeded_database`` its own copy of one migrated and seeded once per session;
- ``postgres_own_server``: always a fresh cluster of the test module's own, which a test may
  ``stop()`` and ``start()`` again (a database outage) without touching the suite's;
- ``redis_server``: a Redis server without persistence;
- ``s3_server``: a moto S3 server; ``s3_bucket`` gives a test its own bucket in ca-central-1;
- ``echo_peer``: DCMTK ``storescp`` as the AE ECHOPEER, answering C-ECHO.

A test using one is an integration test: conftest.py marks it so (``make test-unit`` leaves
it out).
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nexrel.supervisor import stop
from tests import pg_cluster
from tests.fixtures import free_port, wait_for_port

S3_REGION = "ca-central-1"
S3_ACCESS_KEY = "nexrel-test"
S3_SECRET_KEY = "nexrel-test-secret"


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


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str = "postgres"

    def url(self, dbname: str) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The suite's own cluster when it runs on PostgreSQL (``make test-postgres``), else a
    throwaway one (tests/pg_cluster.py) for this session."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.postgresql":
        yield PostgresServer(host=db["HOST"], port=int(db["PORT"]), user=db["USER"])
        return
    if pg_cluster.bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    cluster = pg_cluster.start()
    try:
        yield PostgresServer(host=cluster.host, port=cluster.port, user=cluster.user)
    finally:
        cluster.stop()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> str:
    """A fresh, empty database for one test; returns its URL."""
    return postgres_server.create_database(f"nexrel_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def postgres_seeded_template(postgres_server: PostgresServer, tmp_path_factory) -> str:
    """A database migrated and seeded (``seed_demo --no-images``) once per session, by the
    commands a deployment runs; its name. Migrating costs tens of seconds on a busy machine."""
    name = f"nexrel_seeded_{uuid.uuid4().hex[:8]}"
    seed_database(postgres_server.create_database(name), tmp_path_factory.mktemp("seeded"))
    return name


@pytest.fixture
def postgres_seeded_database(postgres_server: PostgresServer, postgres_seeded_template: str) -> str:
    """A copy of the seeded database for one test (the demo practice, no images); its URL."""
    import psycopg

    name = f"nexrel_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_seeded_template}"')
    return postgres_server.url(name)


@pytest.fixture(scope="module")
def postgres_own_server() -> Iterator[pg_cluster.Cluster]:
    """A cluster no other test uses, even in ``make test-postgres``: a fault test stops it."""
    if pg_cluster.bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    cluster = pg_cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def seed_database(url: str, data_dir: Path) -> None:
    """Migrate and seed (``seed_demo --no-images``) the database at ``url`` with the commands
    a deployment runs."""
    from tests.fixtures import ManagedProcess

    env = {"DATABASE_URL": url, "REDIS_URL": ""}
    for command in (("migrate", "--noinput"), ("seed_demo", "--no-images")):
        done = ManagedProcess(list(command), data_dir=data_dir, env=env).run(timeout=300)
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"


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
