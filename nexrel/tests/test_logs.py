"""Structured logs (nexrel/logs.py): JSON lines with the ids bound for a request or a task,
the same ids in the audit events written meanwhile."""

from __future__ import annotations

import io
import json
import logging

from nexrel import logs
from patients import audit
from patients.models import AuditEvent
from tests.dicom_samples import ingest_processed


def _json_logger() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.NexrelJsonFormatter())
    handler.addFilter(logs.ContextIds())
    logger = logging.getLogger("nexrel.test-json")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_line_is_json_with_the_bound_ids_and_extras():
    logger, out = _json_logger()
    with logs.bound(association_id="4242-7", study_uid="1.2.3"):
        logger.info("C-STORE answered", extra={"status": "0x0000", "bytes": 1234})
    logger.info("outside")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "C-STORE answered" and first["level"] == "INFO"
    assert (first["association_id"], first["study_uid"], first["bytes"]) == (
        "4242-7",
        "1.2.3",
        1234,
    )
    assert "time" in first and "process" in first
    assert "association_id" not in second


def test_the_audit_events_carry_the_same_ids(practice):
    with logs.bound(association_id="4242-9"):
        event = audit.record("110100", action="E", what="test", practice_id=practice.pk)
    assert AuditEvent.objects.get(pk=event.pk).detail["association_id"] == "4242-9"


def test_a_web_request_has_one_id_in_its_events(clinician_client, practice):
    clinician_client.get("/api/dental/appointments/")
    event = AuditEvent.objects.filter(object_ref="GET /api/dental/appointments/").get()
    assert len(event.detail["request_id"]) == 16


def test_a_task_binds_its_instance_and_study(practice, caplog):
    caplog.handler.addFilter(logs.ContextIds())  # as settings.LOGGING's handler has it
    with caplog.at_level(logging.INFO, logger="dicomnet.ingest.pipeline"):
        instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    done = [r for r in caplog.records if r.getMessage() == f"instance {instance.pk} processed"]
    assert done and done[0].instance_id == str(instance.pk)
    assert done[0].study_uid == instance.study.study_instance_uid
