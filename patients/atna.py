"""Audit events as DICOM audit messages (PS3.15 A.5.1, the XML that IHE ATNA repositories
take) and as CSV rows. Checked in tests against the standard's RELAX NG schema
(patients/schema/dicom-audit-message.rnc)."""

from __future__ import annotations

import base64
import csv
from collections.abc import Iterable
from typing import IO, Any
from xml.etree import ElementTree as ET

from django.conf import settings

from patients.audit import EVENT_TYPES, EVENTS
from patients.models import AuditEvent

DCM = "DCM"
RFC3881 = "RFC-3881"
# PS3.15 A.5.2's participant object ID type codes for what an event names.
PATIENT_NUMBER = ("2", RFC3881, "Patient Number")
STUDY_UID = ("110180", DCM, "Study Instance UID")
QUERY_EVENT = "110112"


def _code(parent: ET.Element, tag: str, code: str, system: str, meaning: str) -> ET.Element:
    return ET.SubElement(
        parent, tag, {"csd-code": code, "codeSystemName": system, "originalText": meaning}
    )


def _timestamp(event: AuditEvent) -> str:
    return event.at.isoformat(timespec="microseconds")


def audit_message(event: AuditEvent) -> ET.Element:
    """One event as an <AuditMessage>."""
    message = ET.Element("AuditMessage")
    identification = ET.SubElement(
        message,
        "EventIdentification",
        {
            "EventActionCode": event.action,
            "EventDateTime": _timestamp(event),
            "EventOutcomeIndicator": str(int(event.outcome)),
        },
    )
    _code(identification, "EventID", event.event_id, DCM, EVENTS[event.event_id])
    if event.event_type:
        meaning = EVENT_TYPES.get(event.event_type, event.event_type)
        _code(identification, "EventTypeCode", event.event_type, DCM, meaning)
    if event.outcome_text:
        ET.SubElement(identification, "EventOutcomeDescription").text = event.outcome_text

    # Who asked: the person, or the device (its AE title), from its address.
    requestor = {"UserID": event.username or event.ae_title or "unknown", "UserIsRequestor": "true"}
    if event.ae_title and event.username:
        requestor["AlternativeUserID"] = f"AETITLES={event.ae_title}"
    if event.address:
        requestor["NetworkAccessPointID"] = event.address
        requestor["NetworkAccessPointTypeCode"] = "2"
    ET.SubElement(message, "ActiveParticipant", requestor)
    # Who answered: Nexrel, by its AE title.
    ET.SubElement(
        message,
        "ActiveParticipant",
        {
            "UserID": settings.DICOM_AE_TITLE,
            "AlternativeUserID": f"AETITLES={settings.DICOM_AE_TITLE}",
            "UserIsRequestor": "false",
        },
    )
    source = ET.SubElement(
        message,
        "AuditSourceIdentification",
        {"AuditSourceID": f"Nexrel/{settings.DICOM_AE_TITLE}"},
    )
    if event.practice_id is not None:
        source.set("AuditEnterpriseSiteID", f"practice-{event.practice_id}")
    ET.SubElement(source, "AuditSourceTypeCode", {"csd-code": "4"})  # application server

    if event.patient_chart or event.patient_id is not None:
        patient = ET.SubElement(
            message,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": event.patient_chart or str(event.patient_id),
                "ParticipantObjectTypeCode": "1",
                "ParticipantObjectTypeCodeRole": "1",
            },
        )
        _code(patient, "ParticipantObjectIDTypeCode", *PATIENT_NUMBER)
        ET.SubElement(patient, "ParticipantObjectName").text = event.patient_name or "-"
    if event.study_uid:
        study = ET.SubElement(
            message,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": event.study_uid,
                "ParticipantObjectTypeCode": "2",
                "ParticipantObjectTypeCodeRole": "3",
            },
        )
        _code(study, "ParticipantObjectIDTypeCode", *STUDY_UID)
        ET.SubElement(study, "ParticipantObjectName").text = event.study_uid
    if event.object_ref:
        what = ET.SubElement(
            message,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": event.object_ref,
                "ParticipantObjectTypeCode": "2",
                "ParticipantObjectTypeCodeRole": "24" if event.event_id == QUERY_EVENT else "4",
            },
        )
        _code(what, "ParticipantObjectIDTypeCode", "nexrel-object", "Nexrel", event.what)
        if event.event_id == QUERY_EVENT:
            query = base64.b64encode(event.object_ref.encode()).decode()
            ET.SubElement(what, "ParticipantObjectQuery").text = query
        else:
            ET.SubElement(what, "ParticipantObjectName").text = event.what
    return message


def audit_message_xml(event: AuditEvent) -> bytes:
    return ET.tostring(audit_message(event), encoding="utf-8", xml_declaration=True)


CSV_COLUMNS = [
    "id",
    "at",
    "event_id",
    "event",
    "event_type",
    "action",
    "outcome",
    "outcome_text",
    "what",
    "practice_id",
    "username",
    "ae_title",
    "address",
    "patient_chart",
    "patient_name",
    "study_uid",
    "object_ref",
    "hash",
]


def csv_row(e: AuditEvent) -> list[Any]:
    return [
        e.pk,
        _timestamp(e),
        e.event_id,
        EVENTS.get(e.event_id, ""),
        e.event_type,
        e.action,
        int(e.outcome),
        e.outcome_text,
        e.what,
        e.practice_id if e.practice_id is not None else "",
        e.username,
        e.ae_title,
        e.address,
        e.patient_chart,
        e.patient_name,
        e.study_uid,
        e.object_ref,
        e.hash,
    ]


def write_csv(events: Iterable[AuditEvent], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for event in events:
        writer.writerow(csv_row(event))
        count += 1
    return count
