"""A real Orthanc for integration tests (the root conftest.py imports the fixture).

``orthanc`` starts ``/usr/sbin/Orthanc`` with its own JSON configuration in a temp
directory, DICOM and HTTP on free loopback ports, no plugins and no HTTP authentication.
``orthanc_factory(**config)`` starts one with more configuration, e.g. its DICOMweb plugin
(``DICOMWEB_PLUGIN``, Debian's ``orthanc-dicomweb``) and ``DicomWeb.Servers``; it skips when
a plugin it is given is not installed.
``Orthanc.add_modality`` registers a DICOM peer (a C-MOVE destination) through the REST
API; ``Orthanc.upload`` stores DICOM bytes with ``POST /instances``. Skips when Orthanc is
not installed.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import free_port, wait_for_port
from tests.peers import stop_process

ORTHANC_BIN = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
ORTHANC_AE = "ORTHANC"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


@dataclass
class Orthanc:
    ae_title: str
    dicom_port: int
    http_port: int
    directory: Path
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def request(self, method: str, path: str, body: bytes | None = None, *, json_body=None):
        headers = {}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read()
        return json.loads(data) if data.strip() else None

    def download(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:
            return resp.read()

    def upload(self, dicom: bytes) -> dict:
        return self.request("POST", "/instances", dicom)

    def add_modality(self, name: str, ae_title: str, port: int, host: str = "127.0.0.1") -> None:
        self.request(
            "PUT",
            f"/modalities/{name}",
            json_body={"AET": ae_title, "Host": host, "Port": port},
        )

    def log(self) -> str:
        path = self.directory / "orthanc.log"
        return path.read_text(errors="replace") if path.exists() else ""


def orthanc_config(directory: Path, *, dicom_port: int, http_port: int) -> dict:
    return {
        "Name": "nexrel-test",
        "StorageDirectory": str(directory / "storage"),
        "IndexDirectory": str(directory / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AE,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomModalities": {},
        "DicomModalitiesInDatabase": False,
        "DicomScuTimeout": 10,
        "DefaultEncoding": "Utf8",
        "Plugins": [],
        "LuaScripts": [],
        "StableAge": 1,
        "HttpTimeout": 10,
    }


def start_orthanc(directory: Path, **extra) -> Orthanc:
    """Orthanc with ``orthanc_config`` and ``extra`` on top, its ports open; stop it with
    ``stop_process(server.proc)``."""
    if not Path(ORTHANC_BIN).exists():
        pytest.skip("Orthanc not installed")
    for plugin in extra.get("Plugins", []):
        if not Path(plugin).exists():
            pytest.skip(f"Orthanc plugin {plugin} not installed")
    dicom_port, http_port = free_port(), free_port()
    config = directory / "orthanc.json"
    settings = orthanc_config(directory, dicom_port=dicom_port, http_port=http_port)
    config.write_text(json.dumps({**settings, **extra}))
    log_path = directory / "orthanc.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [ORTHANC_BIN, str(config)],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Orthanc(ORTHANC_AE, dicom_port, http_port, directory, proc)
    try:
        wait_for_port(http_port, timeout=30)
        wait_for_port(dicom_port, timeout=30)
    except TimeoutError:
        stop_process(proc, signal.SIGKILL)
        raise RuntimeError(f"Orthanc did not start:\n{server.log()}") from None
    return server


@pytest.fixture
def orthanc(tmp_path_factory) -> Iterator[Orthanc]:
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    stop_process(server.proc)


@pytest.fixture
def orthanc_factory(tmp_path_factory) -> Iterator[Callable[..., Orthanc]]:
    """``orthanc_factory(**config)``: an Orthanc with more configuration (stopped at the end)."""
    started: list[Orthanc] = []

    def start(**extra) -> Orthanc:
        server = start_orthanc(tmp_path_factory.mktemp("orthanc"), **extra)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_process(server.proc)
