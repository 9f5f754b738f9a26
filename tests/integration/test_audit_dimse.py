"""The listener's audit events (dicomnet/net/audit_events.py), from real DCMTK peers: an
accepted association, its C-STOREs as one event, a C-FIND with its keys, a refused
association, and C-MOVEs (to a known and an unknown destination)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmwrite

from patients.models import AuditEvent
from tests.dicom_samples import intraoral
from tests.fixtures import wait_until
from tests.integration.test_qr_scp import archive, findscu, move  # noqa: F401 (archive: fixture)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("storescu"), reason="DCMTK not installed"),
]


def _events(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


def test_association_and_its_stores_are_one_event_each(listener, tmp_path: Path):
    _, port = listener
    files = []
    for n in range(3):
        path = tmp_path / f"io{n}.dcm"
        dcmwrite(
            path, intraoral(patient_id="1001", instance_number=n + 1), enforce_file_format=True
        )
        files.append(str(path))
    sent = subprocess.run(
        ["storescu", "-aet", "CARESTREAM", "-aec", "NEXREL-CRM", "127.0.0.1", str(port), *files],
        capture_output=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    stores = wait_until(lambda: _events(what="c_store"))
    (store,) = stores
    assert (store.event_id, store.ae_title, store.address) == ("110104", "CARESTREAM", "127.0.0.1")
    assert store.detail["stored"] == 3 and store.detail["refused"] == 0
    (association,) = _events(what="association")
    assert (association.event_id, association.event_type) == ("110114", "110126")


def test_a_refused_association_is_a_security_alert(listener):
    _, port = listener
    refused = subprocess.run(
        ["echoscu", "-aet", "STRANGER", "-aec", "NEXREL-CRM", "127.0.0.1", str(port)],
        capture_output=True,
        timeout=30,
    )
    assert refused.returncode != 0
    (alert,) = wait_until(lambda: _events(what="association_refused"))
    assert (alert.event_id, alert.ae_title) == ("110113", "STRANGER")
    assert alert.outcome == AuditEvent.Outcome.MINOR_FAILURE and alert.outcome_text


def test_c_find_and_c_move_are_recorded(listener, archive, tmp_path: Path):  # noqa: F811
    _, port = listener
    answers = findscu(
        port, "-S", ["QueryRetrieveLevel=STUDY", "PatientName=Côté*", "StudyInstanceUID"],
        tmp_path / "find",
    )  # fmt: skip
    assert answers
    (find,) = wait_until(lambda: _events(what="c_find"))
    assert find.event_id == "110112" and "PatientName=Côté*" in find.object_ref
    assert find.detail["matches"] == len(answers)

    move(port, "CARESTREAM", "NOWHERE", archive["zoe"])
    (refused,) = wait_until(lambda: _events(what="c_move"))
    assert refused.outcome == AuditEvent.Outcome.MINOR_FAILURE
    assert refused.detail["destination"] == "NOWHERE"


def test_json_logs_name_the_association_of_their_audit_event(listener_factory, tmp_path: Path):
    """With LOG_FORMAT=json each DIMSE operation is a JSON line (command, status, duration,
    bytes) carrying the association's id, which its audit event carries too."""
    import json

    proc, port = listener_factory(env={"LOG_FORMAT": "json"})
    path = tmp_path / "io.dcm"
    dcmwrite(path, intraoral(patient_id="1001"), enforce_file_format=True)
    sent = subprocess.run(
        ["storescu", "-aet", "CARESTREAM", "-aec", "NEXREL-CRM", "127.0.0.1", str(port), str(path)],
        capture_output=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    (store,) = wait_until(lambda: _events(what="c_store"))
    lines = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
    stored = [line for line in lines if line.get("command") == "C_STORE"]
    assert stored and stored[0]["status"] == "0x0000" and stored[0]["bytes"] > 1000
    assert stored[0]["association_id"] == store.detail["association_id"]
    assert "duration_ms" in stored[0]
