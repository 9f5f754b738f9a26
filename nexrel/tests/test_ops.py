"""/metrics and /health/ (issue 11 §1–2, nexrel/ops.py): the token, what is counted, and
each check's verdict."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.test import Client
from django.utils import timezone

from dicomnet.models import DicomInstance
from dicomnet.net.heartbeat import read_heartbeats, write_heartbeat
from tests.dicom_samples import ingest_processed

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def ops_settings(settings, tmp_path):
    settings.METRICS_TOKEN = TOKEN
    settings.DATA_DIR = tmp_path
    return settings


def _scrape(client: Client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_metrics_want_the_token(client, ops_settings):
    missing = client.get("/metrics")
    assert missing.status_code == 401 and "Bearer" in missing["WWW-Authenticate"]
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ops_settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 403


def _value(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start!r}")


def test_metrics_count_images_stages_storage_and_audit(client, ops_settings, practice):
    before = _scrape(client)
    label = f'dicom_images_received_total{{calling_ae="-",modality="CT",practice="{practice.pk}"}}'
    start = _value(before, label) if label in before else 0.0
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    text = _scrape(client)
    assert _value(text, label) == start + 1
    assert 'nexrel_pipeline_stage_seconds_count{stage="preview"}' in text
    assert _value(text, f'nexrel_storage_bytes{{practice="{practice.pk}"}}') >= instance.size
    assert "nexrel_queue_depth 0.0" in text
    # The audit events the scrape's own requests and the ingest wrote are counted too.
    assert _value(text, "nexrel_audit_events_total{") >= 1


def test_health_is_ok_with_a_live_listener_and_503_without(client, ops_settings, practice):
    write_heartbeat(2, directory=ops_settings.DATA_DIR / "heartbeats")
    ok = client.get("/health/")
    body = ok.json()
    assert ok.status_code == 200, body
    assert body["status"] == "ok"
    assert body["listener"]["detail"]["associations_open"] == 2
    assert body["database"]["ok"] and body["storage"]["ok"] and body["spool"]["ok"]
    # The listener stopped beating a while ago.
    ops_settings.NEXREL_HEALTH_LISTENER_STALE_SECONDS = 0
    time.sleep(0.05)
    down = client.get("/health/")
    assert down.status_code == 503
    assert down.json()["listener"]["ok"] is False


def test_health_503_when_an_image_waits_too_long(client, ops_settings, practice):
    write_heartbeat(0, directory=ops_settings.DATA_DIR / "heartbeats")
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    DicomInstance.objects.filter(pk=instance.pk).update(
        state=DicomInstance.State.RECEIVED,
        received_at=timezone.now() - dt.timedelta(hours=1),
    )
    response = client.get("/health/")
    assert response.status_code == 503
    queue = response.json()["queue"]
    assert queue["ok"] is False and queue["detail"]["depth"] == 1
    assert queue["detail"]["oldest_seconds"] > 3000


def test_heartbeats_of_long_gone_processes_are_forgotten(tmp_path, settings):
    directory = tmp_path / "beats"
    path = write_heartbeat(1, directory=directory)
    path.write_text('{"pid": 1, "at": 1000.0, "associations": 0}')
    assert read_heartbeats(directory=directory) == [] and not path.exists()


def test_health_503_while_the_spool_refuses_stores(client, ops_settings):
    """Below NEXREL_SPOOL_MIN_FREE_MB the listener answers 0xA700: not healthy, whatever
    the percentage free."""
    write_heartbeat(0, directory=ops_settings.DATA_DIR / "heartbeats")
    ops_settings.NEXREL_HEALTH_SPOOL_MIN_FREE_PERCENT = 0
    ops_settings.NEXREL_SPOOL_MIN_FREE_MB = 10**9  # a petabyte: more than any disk here
    response = client.get("/health/")
    assert response.status_code == 503
    spool = response.json()["spool"]
    assert spool["ok"] is False and spool["detail"]["refusing_stores"] is True
