"""`make run`'s process supervisor: web, DICOM listener and worker together; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures import ROOT, free_port, shared_database_url, wait_for_port

pytestmark = [pytest.mark.integration]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_runs_web_listener_and_worker_and_ctrl_c_stops_all_three(
    transactional_db, practice, isolated_data
):
    web_port, dicom_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "NEXREL_DATA_DIR": str(isolated_data),
        "NEXREL_WEB_ADDRESS": f"127.0.0.1:{web_port}",
        "DICOM_PORT": str(dicom_port),
        "DICOM_BIND_ADDRESS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    isolated_data.mkdir(parents=True, exist_ok=True)
    log = open(isolated_data / "supervisor.log", "w+b")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nexrel.supervisor"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        wait_for_port(web_port, timeout=60)
        wait_for_port(dicom_port, timeout=60)
        page = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/accounts/login/").read()
        assert b"csrfmiddlewaretoken" in page
        css = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/static/css/nexrel.css")
        assert css.status == 200, "static files are served on embedded defaults"
        echo = subprocess.run(
            ["echoscu", "-aet", "CARESTREAM", "-aec", "NEXREL-CRM", "127.0.0.1", str(dicom_port)],
            capture_output=True,
            timeout=30,
        )
        assert echo.returncode == 0, echo.stderr
        children = children_of(proc.pid)
        assert len(children) == 3, "web, listener and worker"

        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
    for child in children:
        assert (
            not Path(f"/proc/{child}").exists()
            or "zombie" in Path(f"/proc/{child}/status").read_text()
        ), f"child {child} survived Ctrl-C:\n{output}"


def test_dev_tls_makes_a_ca_and_the_printed_echoscu_tls_command_works(
    transactional_db, practice, isolated_data
):
    """`make run` (``--dev-tls``): certificates made under the data dir's tls/, the listener
    serving TLS with them, and the banner's ``echoscu +tls`` line answered."""
    web_port, dicom_port, tls_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "NEXREL_DATA_DIR": str(isolated_data),
        "NEXREL_WEB_ADDRESS": f"127.0.0.1:{web_port}",
        "DICOM_PORT": str(dicom_port),
        "DICOM_TLS_PORT": str(tls_port),  # not 4243: other runs may hold it
        "DICOM_BIND_ADDRESS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    isolated_data.mkdir(parents=True, exist_ok=True)
    log_path = isolated_data / "supervisor.log"
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nexrel.supervisor", "--dev-tls"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            wait_for_port(tls_port, timeout=60)
            banner = log_path.read_text(errors="replace")
            line = next(x for x in banner.splitlines() if "echoscu +tls" in x)
            command = line.split("(try: ", 1)[1].rstrip(")").split()
            assert command[-1] == str(tls_port)
            assert (isolated_data / "tls" / "ca.key").stat().st_mode & 0o077 == 0
            echo = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
            assert echo.returncode == 0, f"{command}:\n{echo.stderr}"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
