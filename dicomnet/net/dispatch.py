"""The listener's own DIMSE handlers: C-ECHO, and the one C-FIND handler that dispatches.

Services (store, worklist, MPPS, query/retrieve) bind their handlers through the service
modules the listener loads (``settings.DICOM_SERVICE_MODULES``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from django.db import DEFAULT_DB_ALIAS, connections
from pydicom import Dataset
from pynetdicom import evt
from pynetdicom.sop_class import ModalityWorklistInformationFind

from dicomnet.dimse import status
from dicomnet.models import DeviceService, DicomServer
from dicomnet.net import audit_events
from dicomnet.net.access import AssociationGrant, device_refusal
from nexrel import metrics
from patients.models import Practice

log = logging.getLogger("dicomnet.net.dispatch")

MWL_FIND = str(ModalityWorklistInformationFind)


def grant_of(event: evt.Event) -> AssociationGrant:
    """The association's grant; every DIMSE handler asks for it first, so this is also where
    a database connection that an error left unusable is dropped (``drop_broken_connection``).
    """
    return grant_of_association(event.assoc)


def grant_of_association(assoc) -> AssociationGrant:
    """``grant_of`` for a handler that has the association, not a pynetdicom event."""
    drop_broken_connection()
    return assoc.nexrel  # set by hardening.PracticeACSE


def drop_broken_connection() -> None:
    """Close this thread's database connection if an error left it unusable.

    Django does this at the start of each web request (``close_old_connections``). An
    association thread keeps one connection for the whole association, so after a database
    restart every later operation of that association would fail on the dead connection;
    closed here, the next query opens a new one. A connection that errors but still works
    is kept (the check costs one round trip, only after an error).
    """
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.connection is None or not conn.errors_occurred or conn.in_atomic_block:
        return
    if conn.is_usable():
        conn.errors_occurred = False
    else:
        log.info("database connection lost in an earlier operation: reconnecting")
        conn.close()


def handle_echo(event: evt.Event) -> int:
    return status.SUCCESS


def peers_of(assoc, grant: AssociationGrant) -> tuple[Practice, DicomServer | None]:
    """The practice and device the association was granted for, read once per association."""
    if not hasattr(assoc, "nexrel_peers"):
        assoc.nexrel_peers = (
            Practice.objects.get(pk=grant.practice_id),
            DicomServer.objects.filter(pk=grant.server_id).first(),
        )
    return assoc.nexrel_peers


# A C-FIND service: ``handler(event, grant=..., device=...)`` yields (status, identifier).
FindHandler = Callable[..., Iterator[tuple[int, Dataset | None]]]


PENDING = {0xFF00, 0xFF01}


def handle_find(
    event: evt.Event, handlers: dict[str, FindHandler]
) -> Iterator[tuple[int, Dataset | None]]:
    """Dispatch a C-FIND to the service of its SOP class, once the device may query.

    pynetdicom binds one EVT_C_FIND handler; services declare theirs in ``FIND_HANDLERS``
    (``dicomnet.net.listener.find_handlers``). Each C-FIND, answered or refused, is in the
    audit trail with its match count and final status (``audit_events.record_find``).
    """
    matches, final = 0, status.SUCCESS
    try:
        for answer, identifier in _find(event, handlers):
            if answer in PENDING:
                matches += 1
            else:
                final = answer
            yield answer, identifier
    finally:
        sop_class = str(event.request.AffectedSOPClassUID)
        audit_events.record_find(event, sop_class=sop_class, matches=matches, final=final)
        if sop_class == MWL_FIND:
            metrics.WORKLIST_QUERIES.labels(status=f"0x{final:04X}").inc()


def _find(
    event: evt.Event, handlers: dict[str, FindHandler]
) -> Iterator[tuple[int, Dataset | None]]:
    grant = grant_of(event)
    sop_class = str(event.request.AffectedSOPClassUID)
    handler = handlers.get(sop_class)
    if handler is None:
        log.error(
            "C-FIND from %s refused: no service for SOP class %s", grant.calling_ae, sop_class
        )
        yield status.SOP_CLASS_NOT_SUPPORTED, None
        return
    try:
        _, server = peers_of(event.assoc, grant)
    except Exception:
        log.exception("C-FIND from %s: device lookup failed", grant.calling_ae)
        yield status.FIND_UNABLE_TO_PROCESS, None
        return
    service = DeviceService.WORKLIST if sop_class == MWL_FIND else DeviceService.FIND
    refusal = device_refusal(server, service)
    if refusal:
        log.warning("C-FIND from %s refused with 0x0124: %s", grant.calling_ae, refusal)
        yield status.NOT_AUTHORIZED, None
        return
    try:
        yield from handler(event, grant=grant, device=server)
    except Exception:
        log.exception("C-FIND %s from %s: handler failure", sop_class, grant.calling_ae)
        yield status.FIND_UNABLE_TO_PROCESS, None


ECHO_HANDLERS = [(evt.EVT_C_ECHO, handle_echo)]
