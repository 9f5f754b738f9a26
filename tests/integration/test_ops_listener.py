"""Metrics and health with a real listener process (issue 11 §1–2): its counters reach
/metrics through the multiprocess directory, and its heartbeat makes /health/ say ok,
then 503 once it is stopped."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.test import Client

from tests.fixtures import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("echoscu"), reason="DCMTK not installed"),
]

TOKEN = "metrics-token-for-tests"


def _echo(port: int, calling: str) -> int:
    return subprocess.run(
        ["echoscu", "-aet", calling, "-aec", "NEXREL-CRM", "127.0.0.1", str(port)],
        capture_output=True,
        timeout=30,
    ).returncode


def test_the_listeners_counters_and_heartbeat(
    listener_factory, isolated_data, settings, monkeypatch, tmp_path
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    settings.METRICS_TOKEN = TOKEN
    settings.DATA_DIR = isolated_data
    settings.NEXREL_HEALTH_LISTENER_STALE_SECONDS = 3
    proc, port = listener_factory(
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "DICOM_HEARTBEAT_SECONDS": "1"}
    )
    assert _echo(port, "CARESTREAM") == 0
    assert _echo(port, "STRANGER") != 0
    # The scrape sums the listener's samples from the shared directory.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    client = Client()

    def scraped() -> str:
        return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    text = wait_until(lambda: (t := scraped()) and 'outcome="rejected"' in t and t)
    assert 'dicom_associations_total{outcome="accepted",reason=""} 1.0' in text
    assert 'dicom_associations_total{outcome="rejected",reason="1-1-3"} 1.0' in text
    health = client.get("/health/")
    assert health.json()["listener"]["ok"] is True
    assert health.json()["listener"]["detail"]["processes"] == 1

    proc.stop()
    # A clean stop removes its heartbeat: the listener is reported down.
    down = wait_until(lambda: (r := client.get("/health/")).status_code == 503 and r)
    assert down.json()["listener"]["ok"] is False
