"""The one process supervisor: start named children, watch them, stop them all.

Used by `make run` (web, DICOM listener and django-q2 cluster, ``python -m nexrel.supervisor``,
with ``--dev-tls`` for DICOM TLS with a development CA),
by the listener command for its SO_REUSEPORT processes, and by the tests and benchmarks for
their peers. Stopping is always the same: SIGTERM, a bounded wait, then SIGKILL, since
qcluster can hang on SIGTERM (django-q2 #346).

This module imports no app: every app may use it (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

STOP_WAIT_S = 10.0


def stop(
    proc: subprocess.Popen,
    *,
    sig: int = signal.SIGTERM,
    timeout: float = STOP_WAIT_S,
    group: bool = False,
    name: str = "",
) -> int | None:
    """Send ``sig``, wait up to ``timeout`` seconds, then SIGKILL; the exit code.

    ``group``: the child leads its own session (``start_new_session``); once it is gone,
    whatever it left in its process group is killed too.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if name:
                print(f"{name} did not stop in {timeout:.0f}s: killing", flush=True)
            proc.kill()
            proc.wait(timeout=5)
    if group:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode


def stop_all(procs: Mapping[str, subprocess.Popen], *, timeout: float = STOP_WAIT_S) -> None:
    """SIGTERM to every child at once, then ``stop`` each within one shared deadline."""
    for proc in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, proc in procs.items():
        stop(proc, timeout=max(0.1, deadline - time.monotonic()), name=name)


def supervise(
    commands: Mapping[str, list[str]],
    *,
    should_stop: Callable[[], bool],
    own_sessions: bool = True,
    on_started: Callable[[], None] | None = None,
    poll_s: float = 0.5,
) -> int:
    """Run ``commands`` until ``should_stop()`` or until one of them exits; then stop all.

    1. Start every command; with ``own_sessions`` each gets its own session, so a Ctrl-C on
       the terminal reaches only the supervisor, which stops the children in order.
    2. Watch: a child that exits stops the others (a half-running Nexrel is worse than none);
       its exit code, or 1, is returned.
    3. Stop all (``stop_all``). Returns 0 when asked to stop.
    """
    procs = {
        name: subprocess.Popen(argv, start_new_session=own_sessions)
        for name, argv in commands.items()
    }
    if on_started is not None:
        on_started()
    code = 0
    try:
        while not should_stop():
            exited = next((n for n, p in procs.items() if p.poll() is not None), None)
            if exited is not None:
                print(f"{exited} exited with {procs[exited].returncode}; stopping the others",
                      flush=True)  # fmt: skip
                code = procs[exited].returncode or 1
                break
            time.sleep(poll_s)
    finally:
        stop_all(procs)
    return code


def make_run_commands(python: str) -> dict[str, list[str]]:
    web = os.environ.get("NEXREL_WEB_ADDRESS", "127.0.0.1:8000")
    return {
        # --insecure: runserver serves static files with DEBUG off, as the embedded setup needs.
        "web": [python, "manage.py", "runserver", web, "--noreload", "--insecure"],
        "dicom": [python, "manage.py", "dicom_listener"],
        "worker": [python, "manage.py", "qcluster"],
    }


DEV_TLS_PORT = "4243"  # next to the plain 4242


def dev_tls_dir() -> Path:
    """Where ``make_dev_certs`` puts `make run`'s CA and certificates (var/tls)."""
    root = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("NEXREL_DATA_DIR") or root / "var") / "tls"


def dev_tls_env(directory: Path) -> dict[str, str]:
    """The listener's TLS settings for `make run`: the development CA's files, TLS on 4243
    with client certificates required. A variable already set wins."""
    defaults = {
        "DICOM_TLS_PORT": DEV_TLS_PORT,
        "DICOM_TLS_CERT": str(directory / "server.crt"),
        "DICOM_TLS_KEY": str(directory / "server.key"),
        "DICOM_TLS_CA": str(directory / "ca.crt"),
    }
    return {name: value for name, value in defaults.items() if name not in os.environ}


def _shown(path: Path) -> str:
    """``path`` relative to the current directory when it is under it: a shorter command."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _banner(dev_tls: Path | None = None) -> None:
    port = os.environ.get("DICOM_PORT", "4242")
    ae = os.environ.get("DICOM_AE_TITLE", "NEXREL-CRM")
    tls_port = os.environ.get("DICOM_TLS_PORT")
    tls = ""
    if tls_port and dev_tls is not None:
        key, crt, ca = (_shown(dev_tls / name) for name in ("client.key", "client.crt", "ca.crt"))
        tls = (
            f"  DICOM   TLS on port {tls_port}, client certificate required  (try: echoscu "
            f"+tls {key} {crt} +cf {ca} -aet CARESTREAM -aec {ae} localhost {tls_port})\n"
        )
    elif tls_port:
        tls = f"  DICOM   TLS on port {tls_port}\n"
    print(
        "\nNexrel is running:\n"
        f"  web     http://{os.environ.get('NEXREL_WEB_ADDRESS', '127.0.0.1:8000')}/"
        "\n  logins  (password nexrel-demo): clinician, frontdesk, practiceadmin;"
        " clinician2 (a second practice)\n"
        f"  DICOM   AE {ae} on port {port}  (try: echoscu -aet CARESTREAM -aec {ae} "
        f"127.0.0.1 {port})\n"
        f"{tls}"
        "  worker  django-q2 cluster (ORM broker)\n"
        "Ctrl-C stops all three.\n",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """`make run`: web, listener and worker until Ctrl-C or SIGTERM.

    ``--dev-tls``: first make the development CA and certificates if missing
    (``manage.py make_dev_certs``), and serve DICOM TLS with them (``dev_tls_env``).
    """
    args = sys.argv[1:] if argv is None else argv
    dev_tls = dev_tls_dir() if "--dev-tls" in args else None
    if dev_tls is not None:
        make = [sys.executable, "manage.py", "make_dev_certs", "--dir", str(dev_tls)]
        subprocess.run(make, check=True)
        os.environ.update(dev_tls_env(dev_tls))  # the children inherit it
    # One Prometheus multiprocess directory for the web, listener and worker, emptied at
    # each start (nexrel/metrics.py); /metrics answers once METRICS_TOKEN is set.
    metrics_dir = Path(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        or Path(os.environ.get("NEXREL_DATA_DIR") or Path(__file__).resolve().parent.parent / "var")
        / "metrics"
    )
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return supervise(
        make_run_commands(sys.executable),
        should_stop=lambda: stopping,
        on_started=lambda: _banner(dev_tls),
    )


if __name__ == "__main__":
    sys.exit(main())
