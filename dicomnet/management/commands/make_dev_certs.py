"""Make the local test CA and the certificates `make run` serves DICOM TLS with."""

from __future__ import annotations

import socket
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from dicomnet.net.tls_dev import ensure_dev_certificates


class Command(BaseCommand):
    help = "Make a development CA, a listener and a client certificate (those missing)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dir", dest="directory", type=Path, default=None, help="default: var/tls"
        )

    def handle(self, *args, directory: Path | None, **options) -> None:
        directory = directory or settings.DATA_DIR / "tls"
        hosts = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
        written = ensure_dev_certificates(directory, hosts=hosts)
        for path in written:
            self.stdout.write(f"wrote {path}")
        if not written:
            self.stdout.write(f"development certificates in {directory} already there")
