"""A throwaway PostgreSQL cluster: the ``postgres_server`` fixture's, and the one the whole
suite runs on in ``make test-postgres``.

``start()`` makes a cluster in a fresh temp directory (initdb, trust authentication, UTF-8,
en_US.UTF-8 when the system has it, durability off) and starts ``postgres`` listening only
on 127.0.0.1, on a free port, and on a unix socket inside that directory. When we are root
it runs as an unprivileged user, since postgres refuses to run as root. ``Cluster.stop()``
is a fast shutdown with a bounded wait, then the directory goes.

As a command, it wraps another one::

    python -m tests.pg_cluster -- python -m pytest -n 2

1. Start a cluster and create the database ``nexrel`` in it.
2. Run the command with ``DATABASE_URL`` pointing there: settings.py then uses PostgreSQL,
   pytest-django makes one ``test_nexrel_gwN`` database per xdist worker, and the fixtures
   (``postgres_server``, the listener and worker subprocesses) use this cluster too.
3. Stop the cluster and remove its directory however the command ends: its exit code, an
   exception, or SIGINT/SIGTERM/SIGHUP sent to us (forwarded to the command first). If we are
   SIGKILLed, postgres gets SIGINT from the kernel (``PR_SET_PDEATHSIG``) and stops itself;
   only the temp directory is left then.

Imports no Django: it runs before settings are read.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RUN_AS = ("postgres", "nexrel-test")  # tried in order when we are root
DATABASE = "nexrel"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
PR_SET_PDEATHSIG = 1

# Throwaway data: durability off, so the suite stays fast. Enough connections for two xdist
# workers, each with its listeners, django-q2 clusters and web servers.
SERVER_OPTIONS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


def bin_dir() -> Path | None:
    """Where initdb and postgres are: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _run_as() -> str | None:
    """None when we may run postgres ourselves; otherwise an unprivileged user to run it as."""
    if os.geteuid() != 0:
        return None
    for name in RUN_AS:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_AS[-1]],
        check=True,
        capture_output=True,
    )
    return RUN_AS[-1]


def _locale_options() -> list[str]:
    """en_US.UTF-8 when the system has it, as a Debian cluster made by the package gets from
    the system; its text order is not SQLite's, which the PostgreSQL pass must show.
    Otherwise the C locale."""
    try:
        found = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    except OSError:
        found = []
    if {"en_US.utf8", "en_US.UTF-8"} & set(found):
        return ["--locale=en_US.UTF-8"]
    return ["--no-locale"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, after the user switch: SIGINT (fast shutdown) when our parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


@dataclass
class Cluster:
    root: Path
    host: str
    port: int
    proc: subprocess.Popen = field(repr=False)
    user: str = "postgres"
    argv: list[str] = field(default_factory=list, repr=False)
    run_as: str | None = field(default=None, repr=False)

    @property
    def socket_dir(self) -> Path:
        return self.root / "sockets"

    def url(self, dbname: str) -> str:
        return f"postgres://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name``; its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def pause(self) -> None:
        """Fast shutdown, keeping the data: the database goes away under its clients (a
        fault test's outage) until ``resume``."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=STOP_TIMEOUT_S)

    def resume(self) -> None:
        """Start again after ``pause``, on the same port with the same data; returns once it
        takes sessions."""
        self.proc = _spawn(self.argv, self.root, self.run_as)
        if not _wait_ready(self.proc, self.port):
            raise RuntimeError(f"postgres did not start again:\n{self.log()}")
        _wait_accepting(self.url("postgres"))

    def stop(self) -> None:
        """SIGINT (postgres' fast shutdown), a bounded wait, SIGKILL; then the directory goes."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            # postgres' own children (backends, checkpointer) share its process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen, port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _spawn(argv: list[str], root: Path, user: str | None) -> subprocess.Popen:
    with open(root / "postgres.log", "ab") as log:
        return subprocess.Popen(
            argv,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
            user=user,
            start_new_session=True,  # a Ctrl-C reaches the tests, not the database under them
            preexec_fn=_die_with_parent,
        )


def _wait_accepting(url: str) -> None:
    """The port opens before the server takes sessions ("the database system is starting
    up"): wait for one to succeed."""
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start() -> Cluster:
    """A fresh cluster, running; raises RuntimeError (with its log) if it does not start."""
    found = bin_dir()
    if found is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, postgres) are not installed")
    user = _run_as()
    # Not pytest's tmp_path: that is private to us, and postgres may run as another user.
    root = Path(tempfile.mkdtemp(prefix="nexrel-pg-"))
    try:
        sockets = root / "sockets"
        sockets.mkdir()
        if user:
            for path in (root, sockets):
                shutil.chown(path, user=user)
        init = subprocess.run(
            [str(found / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "trust"]
            + ["-E", "UTF8", *_locale_options(), "--no-sync"],
            cwd=root,
            user=user,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        port = _free_port()
        options = [arg for k, v in SERVER_OPTIONS.items() for arg in ("-c", f"{k}={v}")]
        argv = [str(found / "postgres"), "-D", str(root / "data"), "-h", "127.0.0.1"]
        argv += ["-p", str(port), "-k", str(sockets), *options]
        proc = _spawn(argv, root, user)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    cluster = Cluster(root=root, host="127.0.0.1", port=port, proc=proc, argv=argv, run_as=user)
    if not _wait_ready(proc, port):
        log_text = cluster.log()
        cluster.stop()
        raise RuntimeError(f"postgres did not start:\n{log_text}")
    return cluster


def run(command: list[str]) -> int:
    """Run ``command`` against a fresh cluster (the module's docstring); its exit code."""
    cluster = start()
    child: subprocess.Popen | None = None

    def forward(signum: int, _frame) -> None:
        if child is not None and child.poll() is None:
            child.send_signal(signum)
        else:
            raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        url = cluster.create_database(DATABASE)
        print(f"PostgreSQL {cluster.port} on 127.0.0.1 ({cluster.root})", flush=True)
        child = subprocess.Popen(command, env={**os.environ, "DATABASE_URL": url})
        while True:
            try:
                code = child.wait()
                return 128 - code if code < 0 else code  # killed by a signal: as a shell says
            except KeyboardInterrupt:  # the terminal's SIGINT reached the command as well
                continue
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        cluster.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m tests.pg_cluster -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    return run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
