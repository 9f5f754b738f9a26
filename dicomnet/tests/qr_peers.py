"""Shared by the query/retrieve API and page tests: a second practice, and real peers
(DCMTK ``storescp`` for C-ECHO; Orthanc comes from the ``tests.orthanc`` plugin)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dicomnet.models import DicomServer, RetrieveJob
from patients.models import Patient, Practice, User
from tests.fixtures import free_port, wait_for_port
from tests.peers import stop_process


@dataclass
class OtherPractice:
    practice: Practice
    user: User
    server: DicomServer
    patient: Patient
    job: RetrieveJob


@pytest.fixture
def clinician(practice) -> User:
    return User.objects.get(username="clinician")


@pytest.fixture
def other(db) -> OtherPractice:
    practice = Practice.objects.create(name="Clinique B", ae_title="CLINIQUE-B")
    user = User.objects.create_user("other", practice=practice, password="x")
    server = DicomServer.objects.create(
        practice=practice,
        name="PACS B",
        ae_title="PACSB",
        allow_find=True,
        allow_move=True,
        allow_get=True,
    )
    patient = Patient.objects.create(
        practice=practice, chart_number="9001", family_name="Autre", given_name="Patiente"
    )
    job = RetrieveJob.objects.create(
        practice=practice, server=server, patient=patient, study_instance_uids=["1.2.3"]
    )
    return OtherPractice(practice, user, server, patient, job)


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[int]:
    """DCMTK storescp on a free port (it answers C-ECHO); yields the port."""
    if not shutil.which("storescp"):
        pytest.skip("DCMTK not installed")
    port = free_port()
    out = tmp_path / "storescp"
    out.mkdir()
    log = open(tmp_path / "storescp.log", "wb")
    proc = subprocess.Popen(
        ["storescp", "-aet", "ECHOPEER", "-od", str(out), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        wait_for_port(port, timeout=20)
        yield port
    finally:
        stop_process(proc)


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    return free_port()


def peer_server(practice: Practice, port: int, ae_title: str, **flags) -> DicomServer:
    defaults = dict(allow_find=True, allow_move=True, allow_get=True)
    return DicomServer.objects.create(
        practice=practice,
        name=f"Peer {ae_title}",
        ae_title=ae_title,
        host="127.0.0.1",
        port=port,
        **{**defaults, **flags},
    )
