"""Orthanc as Nexrel's front end, end to end, with the configuration in deploy/orthanc/.

A real Orthanc (authentication on) runs deploy/orthanc/nexrel.lua; its OnStoredInstance calls
the webhook of a real Nexrel web server (runserver subprocess on the test database); a real
django-q2 worker fetches the instance back from Orthanc's REST API with Orthanc's credentials
and runs the ingest pipeline.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomnet.ingest import apikeys
from dicomnet.models import DicomInstance, DicomStudy, OrthancNotification
from tests.dicom_samples import write_dicom
from tests.fixtures import ROOT, ManagedProcess, free_port, wait_for_port, wait_until
from tests.peers import stop_process

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("Orthanc") and shutil.which("storescu")),
        reason="Orthanc or DCMTK not installed",
    ),
]

DEPLOY = ROOT / "deploy" / "orthanc"
ORTHANC_PASSWORD = "orthanc-test-secret"


@dataclass
class Frontend:
    orthanc_url: str
    dicom_port: int
    webhook_url: str
    api_key: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def orthanc_config(tmp_path: Path, *, dicom_port: int, http_port: int) -> dict:
    """deploy/orthanc/orthanc.json with a temporary store, free ports and loopback devices."""
    config = json.loads((DEPLOY / "orthanc.json").read_text())
    assert config["DicomAet"] == "NEXREL-CRM" and config["AuthenticationEnabled"] is True
    config.update(
        StorageDirectory=str(tmp_path / "orthanc-db"),
        IndexDirectory=str(tmp_path / "orthanc-db"),
        DicomPort=dicom_port,
        HttpPort=http_port,
        RemoteAccessAllowed=False,  # loopback only in tests
        LuaScripts=[str(DEPLOY / "nexrel.lua")],
    )
    for device in config["DicomModalities"].values():
        device["Host"] = "127.0.0.1"
    return config


@pytest.fixture
def frontend(transactional_db, practice, isolated_data, tmp_path, monkeypatch) -> Iterator:
    """Nexrel's web server and an Orthanc calling it; the env is set for later workers."""
    api_key = apikeys.create_api_key(practice=practice, name="Orthanc")[1]
    web_port, dicom_port, http_port = free_port(), free_port(), free_port()
    orthanc_url = f"http://127.0.0.1:{http_port}"
    # The `worker` fixture (started after this one) inherits these.
    monkeypatch.setenv("ORTHANC_URL", orthanc_url)
    monkeypatch.setenv("ORTHANC_USERNAME", "nexrel")
    monkeypatch.setenv("ORTHANC_PASSWORD", ORTHANC_PASSWORD)

    web = ManagedProcess(
        ["runserver", f"127.0.0.1:{web_port}", "--noreload", "--insecure"], data_dir=isolated_data
    ).start()
    config_path = tmp_path / "orthanc.json"
    config_path.write_text(
        json.dumps(orthanc_config(tmp_path, dicom_port=dicom_port, http_port=http_port))
    )
    log_path = tmp_path / "orthanc.log"
    webhook_url = f"http://127.0.0.1:{web_port}/api/dental/dicom/receive"
    env = {
        **os.environ,
        "ORTHANC_PASSWORD": ORTHANC_PASSWORD,
        "NEXREL_WEBHOOK_URL": webhook_url,
        "NEXREL_API_KEY": api_key,
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            ["Orthanc", "--verbose", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        try:
            wait_for_port(web_port)
        except TimeoutError:
            raise AssertionError(f"runserver did not start:\n{web.output()}") from None
        try:
            wait_for_port(http_port)
            wait_for_port(dicom_port)
        except TimeoutError:
            raise AssertionError(f"Orthanc did not start:\n{log_path.read_text()}") from None
        yield Frontend(orthanc_url, dicom_port, webhook_url, api_key, log_path)
    finally:
        stop_process(proc)
        web.stop()


def storescu(
    frontend: Frontend, *paths: Path, calling_ae: str = "CARESTREAM", expect_ok: bool = True
) -> None:
    result = subprocess.run(
        ["storescu", "-aet", calling_ae, "-aec", "NEXREL-CRM", "127.0.0.1"]
        + [str(frontend.dicom_port), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if expect_ok:
        assert result.returncode == 0, result.stdout + result.stderr + frontend.log()


def orthanc_get(frontend: Frontend, path: str, password: str | None) -> int:
    request = urllib.request.Request(frontend.orthanc_url + path)
    if password is not None:
        token = base64.b64encode(f"nexrel:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def orthanc_instances(frontend: Frontend) -> list[str]:
    request = urllib.request.Request(frontend.orthanc_url + "/instances")
    token = base64.b64encode(f"nexrel:{ORTHANC_PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def resend(frontend: Frontend, orthanc_instance_id: str) -> int:
    request = urllib.request.Request(
        frontend.webhook_url,
        data=json.dumps({"instance_id": orthanc_instance_id}).encode(),
        headers={"Content-Type": "application/json", "X-Api-Key": frontend.api_key},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def zoe_study(tmp_path: Path, count: int = 2) -> list[Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    study_uid, series_uid = generate_uid(), generate_uid()
    return [
        write_dicom(
            tmp_path / f"zoe-{n}.dcm",
            patient_id="1001",
            patient_name="Côté^Zoé",
            birth_date="19880314",
            study_uid=study_uid,
            series_uid=series_uid,
            instance_number=n,
        )
        for n in range(1, count + 1)
    ]


def test_study_stored_in_orthanc_is_ingested_previewed_and_linked(frontend, worker, tmp_path):
    # Orthanc's REST API is closed without its credentials.
    assert orthanc_get(frontend, "/system", None) == 401
    assert orthanc_get(frontend, "/system", "wrong") == 401
    assert orthanc_get(frontend, "/system", ORTHANC_PASSWORD) == 200

    # Only the practice's devices may store (an unknown AE title is turned away by Orthanc).
    storescu(frontend, *zoe_study(tmp_path / "x"), calling_ae="INTRUDER", expect_ok=False)
    assert orthanc_get(frontend, "/instances", ORTHANC_PASSWORD) == 200
    assert orthanc_instances(frontend) == []

    storescu(frontend, *zoe_study(tmp_path))

    def fetched():
        rows = OrthancNotification.objects.filter(status=OrthancNotification.Status.FETCHED)
        return list(rows) if rows.count() == 2 else None

    notifications = wait_until(fetched, timeout=60)
    processed = wait_until(
        lambda: DicomInstance.objects.filter(state=DicomInstance.State.PROCESSED).count() == 2,
        timeout=60,
    )
    assert processed
    study = DicomStudy.objects.get()
    assert study.instance_count == 2
    assert study.patient is not None
    assert (study.patient.chart_number, study.patient.family_name) == ("1001", "Côté")
    for notification in notifications:
        assert notification.server.ae_title == "CARESTREAM"
        assert notification.instance.calling_ae == "CARESTREAM"
        assert notification.instance.thumbnail_key and notification.instance.preview_key

    # A resent notification creates nothing.
    assert resend(frontend, notifications[0].orthanc_instance_id) == 200
    assert OrthancNotification.objects.count() == 2
    assert DicomInstance.objects.count() == 2
    assert sorted(orthanc_instances(frontend)) == sorted(
        n.orthanc_instance_id for n in notifications
    )


def test_fetch_with_wrong_orthanc_password_is_retried_and_its_failure_visible(
    frontend, isolated_data, tmp_path
):
    worker = ManagedProcess(
        ["qcluster"],
        data_dir=isolated_data,
        env={"Q_WORKERS": "1", "ORTHANC_PASSWORD": "wrong", "NEXREL_TASK_MAX_ATTEMPTS": "2"},
    ).start()
    try:
        storescu(frontend, *zoe_study(tmp_path, count=1), calling_ae="VATECH")
        notification = wait_until(
            lambda: OrthancNotification.objects.filter(attempts__gte=1).first(), timeout=60
        )
        assert notification.status == OrthancNotification.Status.PENDING  # a retry is due
        assert "refused our credentials (HTTP 401)" in notification.error
        # The retry runs from django-q2's scheduler (about every 30 s), then gives up.
        failed = wait_until(
            lambda: OrthancNotification.objects.filter(
                status=OrthancNotification.Status.FAILED
            ).first(),
            timeout=90,
        )
        assert failed.attempts == 2
        assert "refused our credentials" in failed.error
        assert "gave up after 2 attempts" in worker.output()
        assert not DicomInstance.objects.exists()
    finally:
        worker.stop(timeout=5)
