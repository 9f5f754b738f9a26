"""Run the DICOM listener. Owns only the process loop and signal handling."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dicomnet.ingest.reconcile import reconcile_spool
from dicomnet.net.listener import serve
from nexrel.supervisor import supervise


class Command(BaseCommand):
    help = "Accept DICOM associations (C-ECHO, C-STORE, worklist and query/retrieve)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=None)
        parser.add_argument("--tls-port", type=int, default=None, help="default: DICOM_TLS_PORT")
        parser.add_argument("--address", default=None)
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="listener processes sharing the port (SO_REUSEPORT)",
        )
        parser.add_argument("--no-reconcile", action="store_true")
        parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)

    def handle(
        self, *args, port, tls_port, address, processes, no_reconcile, child, **options
    ) -> None:
        processes = processes or settings.DICOM_LISTENER_PROCESSES
        if not child and not no_reconcile:
            report = reconcile_spool()
            self.stdout.write(f"reconcile at start: {report}")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if processes <= 1 or child:
            serve(stop, port=port, address=address, tls_port=tls_port)
            return
        self._supervise(stop, processes, port, address, tls_port)

    def _supervise(self, stop: threading.Event, processes: int, port, address, tls_port) -> None:
        """One child per process on the same port; any child's exit stops them all."""
        argv = [sys.executable, sys.argv[0], "dicom_listener", "--child", "--no-reconcile"]
        if port:
            argv += ["--port", str(port)]
        if address:
            argv += ["--address", address]
        if tls_port:
            argv += ["--tls-port", str(tls_port)]
        commands = {f"listener process {n}": argv for n in range(1, processes + 1)}
        code = supervise(
            commands,
            should_stop=stop.is_set,
            own_sessions=False,  # a terminal's Ctrl-C reaches the children too
            on_started=lambda: self.stdout.write(f"started {processes} listener processes"),
        )
        if code:
            raise CommandError(f"a listener process exited with {code}; stopped the others")
