"""The listener's side of the audit trail (issue 10 §3, patients/audit.py): each accepted
association (110114, node authentication), its C-STOREs as one "DICOM Instances
Transferred" (110104) per association when it ends (counted by SOP class and outcome: one
event per image would put a database write in each image's round trip), and each C-FIND
(110112) with its identifier. Refusals are written where they are decided
(dicomnet.net.access.record_refusal); C-MOVE and C-GET by dicomnet.qr.scp.

Handlers run in the association's thread; these are bound before hardening's, so that
the tally is written before that thread's database connection is closed."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import Counter
from typing import Any

from pydicom import Dataset
from pynetdicom import evt

from dicomnet.dimse import status
from nexrel import logs
from patients import audit
from patients.models import AuditEvent

log = logging.getLogger("dicomnet.net.audit_events")

QUERY_KEYS_SHOWN = 255  # characters of the identifier kept as the query's object


def _grant(assoc: Any):
    return getattr(assoc, "nexrel", None)


def _who(assoc: Any) -> dict[str, Any]:
    grant = _grant(assoc)
    if grant is None:
        return {"ae_title": str(assoc.requestor.ae_title).strip(), "address": ""}
    return {
        "ae_title": grant.calling_ae,
        "address": grant.peer_address,
        "practice_id": grant.practice_id,
    }


def _association(assoc: Any) -> dict[str, str]:
    number = getattr(assoc, "nexrel_id", "")
    return {"association_id": number} if number else {}


def _safely(what: str, write) -> None:
    """An audit write that fails is logged; the DICOM exchange goes on (its answer was, or
    will be, sent either way)."""
    try:
        write()
    except Exception:
        log.exception("audit event %s not written", what)


def on_accepted(event: evt.Event) -> None:
    assoc = event.assoc
    if not assoc.is_acceptor:
        return
    who = _who(assoc)
    _safely(
        "association",
        lambda: audit.record(
            "110114",
            action="E",
            event_type="110126",
            what="association",
            detail={"called_ae": str(assoc.acceptor.ae_title).strip()},
            **who,
        ),
    )


def note_store(assoc: Any, sop_class_uid: str, answer: int) -> None:
    """Count one C-STORE of the association (called by the store handler)."""
    tally = getattr(assoc, "nexrel_store_tally", None)
    if tally is None:
        tally = assoc.nexrel_store_tally = Counter()
    tally[(sop_class_uid, answer == status.SUCCESS)] += 1


def on_conn_close(event: evt.Event) -> None:
    assoc: Any = event.assoc  # carries the tally note_store left on it
    tally: Counter | None = getattr(assoc, "nexrel_store_tally", None)
    if not tally or getattr(assoc, "nexrel_store_audited", False):
        return
    assoc.nexrel_store_audited = True
    stored = sum(n for (_, ok), n in tally.items() if ok)
    refused = sum(n for (_, ok), n in tally.items() if not ok)
    by_class: Counter = Counter()
    for (sop_class, _), n in tally.items():
        by_class[sop_class] += n
    _safely(
        "c_store",
        lambda: audit.record(
            "110104",
            action="C",
            what="c_store",
            outcome=AuditEvent.Outcome.SUCCESS if not refused else AuditEvent.Outcome.MINOR_FAILURE,
            outcome_text=f"{stored} stored, {refused} refused",
            detail={
                "stored": stored,
                "refused": refused,
                "sop_classes": dict(by_class),
                **_association(assoc),
            },
            **_who(assoc),
        ),
    )


def _identifier(dataset: Dataset | None) -> str:
    """The query's keys with a value, as "Keyword=value" pairs (no empty return keys)."""
    if dataset is None:
        return ""
    pairs = []
    for element in dataset:
        if element.VR != "SQ" and element.value not in (None, "", b""):
            pairs.append(f"{element.keyword or element.tag}={element.value}")
    return " ".join(pairs)[:QUERY_KEYS_SHOWN]


def record_find(event: evt.Event, *, sop_class: str, matches: int, final: int) -> None:
    """One C-FIND, once answered: its identifier, how many matches, its final status."""
    try:
        identifier = _identifier(event.identifier)
    except Exception:  # an identifier that does not decode was refused already
        identifier = ""
    ok = final == status.SUCCESS
    _safely(
        "c_find",
        lambda: audit.record(
            "110112",
            action="E",
            what="c_find",
            outcome=AuditEvent.Outcome.SUCCESS if ok else AuditEvent.Outcome.MINOR_FAILURE,
            outcome_text=f"{matches} matches, status 0x{final:04X}",
            object_ref=identifier,
            detail={"sop_class": sop_class, "matches": matches},
            **_who(event.assoc),
        ),
    )


_association_numbers = itertools.count(1)


def name_association(assoc: Any) -> str:
    """The association's id for its log lines and audit events (nexrel/logs.py), bound in
    the thread that negotiates and serves it (called by PracticeACSE); transport events
    come from pynetdicom's DUL thread, so the audit events also name it explicitly."""
    assoc.nexrel_id = f"{os.getpid()}-{next(_association_numbers)}"
    peer = getattr(assoc.requestor, "address", "") or ""
    logs.bind(association_id=assoc.nexrel_id, peer=str(peer))
    return assoc.nexrel_id


def on_dimse_recv(event: evt.Event) -> None:
    """Note when each request arrived, to time its answer."""
    message: Any = event.message
    command = message.command_set
    if "MessageID" in command:
        started = getattr(event.assoc, "nexrel_started", None)
        if started is None:
            started = event.assoc.nexrel_started = {}  # type: ignore[attr-defined]
        started[int(command.MessageID)] = time.perf_counter()


def on_dimse_sent(event: evt.Event) -> None:
    """One log line per DIMSE operation answered (C-STORE logs its own, with its bytes):
    the command, its final status and how long it took."""
    message: Any = event.message
    command = message.command_set
    name = type(message).__name__
    if not name.endswith("_RSP") or name == "C_STORE_RSP" or "Status" not in command:
        return
    answer = int(command.Status)
    if answer in (0xFF00, 0xFF01):  # pending: the operation goes on
        return
    started = getattr(event.assoc, "nexrel_started", {}).pop(
        int(command.get("MessageIDBeingRespondedTo", -1)), None
    )
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    log.info(
        "%s answered 0x%04X in %s ms",
        name.removesuffix("_RSP").replace("_", "-"),
        answer,
        duration_ms,
        extra={
            "command": name.removesuffix("_RSP"),
            "status": f"0x{answer:04X}",
            "duration_ms": duration_ms,
            "sop_class": str(command.get("AffectedSOPClassUID", "")),
            **_who(event.assoc),
        },
    )


HANDLERS = [
    (evt.EVT_ACCEPTED, on_accepted),
    (evt.EVT_DIMSE_RECV, on_dimse_recv),
    (evt.EVT_DIMSE_SENT, on_dimse_sent),
    (evt.EVT_CONN_CLOSE, on_conn_close),
]


def record_operation(
    event: evt.Event, *, event_id: str, action: str, what: str, answer: int, object_ref: str
) -> None:
    """One N-CREATE or N-SET (MPPS: 110109 Order Record, the worklist item's step)."""
    ok = answer == status.SUCCESS
    _safely(
        what,
        lambda: audit.record(
            event_id,
            action=action,
            what=what,
            outcome=AuditEvent.Outcome.SUCCESS if ok else AuditEvent.Outcome.MINOR_FAILURE,
            outcome_text=f"status 0x{answer:04X}",
            object_ref=object_ref,
            **_who(event.assoc),
        ),
    )
