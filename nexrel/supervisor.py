"""Run the web server, the DICOM listener and the django-q2 cluster together (`make run`).

Ctrl-C (or SIGTERM) stops all three: SIGTERM to each, a bounded wait, then SIGKILL, since
qcluster can hang on SIGTERM (django-q2 #346).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

STOP_WAIT_S = 10.0


def commands(python: str) -> dict[str, list[str]]:
    web = os.environ.get("NEXREL_WEB_ADDRESS", "127.0.0.1:8000")
    return {
        # --insecure: runserver serves static files with DEBUG off, as the embedded setup needs.
        "web": [python, "manage.py", "runserver", web, "--noreload", "--insecure"],
        "dicom": [python, "manage.py", "dicom_listener"],
        "worker": [python, "manage.py", "qcluster"],
    }


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    for name, proc in procs.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in {STOP_WAIT_S:.0f}s: killing", flush=True)
            proc.kill()
            proc.wait()


def main() -> int:
    stopping = False

    def request_stop(*_) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    # Children get their own process group so Ctrl-C reaches only us; we stop them in order.
    procs = {
        name: subprocess.Popen(argv, start_new_session=True)
        for name, argv in commands(sys.executable).items()
    }
    port = os.environ.get("DICOM_PORT", "4242")
    ae = os.environ.get("DICOM_AE_TITLE", "NEXREL-CRM")
    print(
        "\nNexrel is running:\n"
        f"  web     http://{os.environ.get('NEXREL_WEB_ADDRESS', '127.0.0.1:8000')}/"
        "  (login: clinician / nexrel-demo)\n"
        f"  DICOM   AE {ae} on port {port}  (try: echoscu -aet CARESTREAM -aec {ae} "
        f"127.0.0.1 {port})\n"
        "  worker  django-q2 cluster (ORM broker)\n"
        "Ctrl-C stops all three.\n",
        flush=True,
    )
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"{name} exited with {proc.returncode}; stopping the others", flush=True)
                code = proc.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    stop_all(procs)
    return code


if __name__ == "__main__":
    sys.exit(main())
