"""Run the DICOM listener. Owns only the process loop and signal handling."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from dicomnet.ingest.reconcile import reconcile_spool
from dicomnet.net.listener import serve


class Command(BaseCommand):
    help = "Accept DICOM associations (C-ECHO, C-STORE, worklist and query/retrieve)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=None)
        parser.add_argument("--address", default=None)
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="listener processes sharing the port (SO_REUSEPORT)",
        )
        parser.add_argument("--no-reconcile", action="store_true")
        parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args, port, address, processes, no_reconcile, child, **options) -> None:
        processes = processes or settings.DICOM_LISTENER_PROCESSES
        if not child and not no_reconcile:
            report = reconcile_spool()
            self.stdout.write(f"reconcile at start: {report}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if processes <= 1 or child:
            serve(stop, port=port, address=address)
            return
        self._supervise(stop, processes, port, address)

    def _supervise(self, stop: threading.Event, processes: int, port, address) -> None:
        argv = [sys.executable, sys.argv[0], "dicom_listener", "--child", "--no-reconcile"]
        if port:
            argv += ["--port", str(port)]
        if address:
            argv += ["--address", address]
        children = [subprocess.Popen(argv) for _ in range(processes)]
        self.stdout.write(f"started {processes} listener processes")
        while not stop.wait(1.0):
            if any(c.poll() is not None for c in children):
                self.stderr.write("a listener process exited; stopping the others")
                break
        for c in children:
            if c.poll() is None:
                c.terminate()
        for c in children:
            try:
                c.wait(timeout=15)
            except subprocess.TimeoutExpired:
                c.kill()
