"""pynetdicom event handlers: translate DIMSE requests into calls to the plain modules."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pydicom import Dataset
from pynetdicom import evt

from dicomnet import incoming, status
from dicomnet.access import AssociationGrant
from dicomnet.ingest import IngestError, OutOfResources, store_instance
from dicomnet.models import DicomServer
from patients.models import Practice

log = logging.getLogger("dicomnet.scp")


def grant_of(event: evt.Event) -> AssociationGrant:
    return event.assoc.nexrel  # set by network.PracticeACSE on acceptance


def handle_echo(event: evt.Event) -> int:
    return status.SUCCESS


def handle_store(event: evt.Event) -> int:
    """Store the received object durably and answer; on any failure remove its temp file.

    ``store_instance`` consumes the file on success; otherwise it stays in this process's
    spool temp directory, which the reconciler only clears once the process is gone.
    """
    grant = grant_of(event)
    request = event.request
    sop_uid = str(request.AffectedSOPInstanceUID)
    path = Path(event.dataset_path)
    result = _store(event, grant, path, sop_uid)
    if result != status.SUCCESS:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return result


def _peers(assoc, grant: AssociationGrant) -> tuple[Practice, DicomServer | None]:
    """The practice and device the association was granted for, read once per association."""
    if not hasattr(assoc, "nexrel_peers"):
        assoc.nexrel_peers = (
            Practice.objects.get(pk=grant.practice_id),
            DicomServer.objects.filter(pk=grant.server_id).first(),
        )
    return assoc.nexrel_peers


def _next_position(assoc) -> int:
    """The rank of this object in its association (one thread per association: no lock)."""
    assoc.nexrel_objects = getattr(assoc, "nexrel_objects", 0) + 1
    return assoc.nexrel_objects


def _store(event: evt.Event, grant: AssociationGrant, path: Path, sop_uid: str) -> int:
    request = event.request
    try:
        write_error = incoming.take_write_error(path)
        if write_error is not None:
            reason = "disk full" if write_error.errno == errno.ENOSPC else "spool not writable"
            raise OutOfResources(f"{reason} while receiving: {write_error}")
        practice, server = _peers(event.assoc, grant)
        if server is not None and not server.allow_store:
            log.warning("C-STORE from %s refused: device may not store", grant.calling_ae)
            return status.NOT_AUTHORIZED
        outcome = store_instance(
            path,
            practice=practice,
            server=server,
            calling_ae=grant.calling_ae,
            peer_address=grant.peer_address,
            expected_sop_instance_uid=sop_uid,
            expected_sop_class_uid=str(request.AffectedSOPClassUID),
            position=_next_position(event.assoc),
        )
    except IngestError as exc:
        log.warning(
            "C-STORE %s from %s refused with 0x%04X: %s", sop_uid, grant.calling_ae, exc.status, exc
        )
        return exc.status
    except Exception:
        log.exception("C-STORE %s from %s: handler failure", sop_uid, grant.calling_ae)
        return status.STORE_HANDLER_FAILURE
    log.debug("stored %s as instance %s", sop_uid, outcome.instance.pk)
    return status.SUCCESS


# A C-FIND service: ``handler(event, grant=..., device=...)`` yields (status, identifier).
FindHandler = Callable[..., Iterator[tuple[int, Dataset | None]]]


def handle_find(
    event: evt.Event, handlers: dict[str, FindHandler]
) -> Iterator[tuple[int, Dataset | None]]:
    """Dispatch a C-FIND to the service of its SOP class, once the device may query.

    pynetdicom binds one EVT_C_FIND handler; services declare theirs in ``FIND_HANDLERS``
    (``dicomnet.listener.find_handlers``).
    """
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
        _, server = _peers(event.assoc, grant)
    except Exception:
        log.exception("C-FIND from %s: device lookup failed", grant.calling_ae)
        yield status.FIND_UNABLE_TO_PROCESS, None
        return
    if server is None or not server.allow_find:
        log.warning(
            "C-FIND from %s refused: device %s may not query (allow_find is off)",
            grant.calling_ae,
            server.name if server else "(deleted)",
        )
        yield status.NOT_AUTHORIZED, None
        return
    try:
        yield from handler(event, grant=grant, device=server)
    except Exception:
        log.exception("C-FIND %s from %s: handler failure", sop_class, grant.calling_ae)
        yield status.FIND_UNABLE_TO_PROCESS, None


STORE_HANDLERS = [
    (evt.EVT_C_ECHO, handle_echo),
    (evt.EVT_C_STORE, handle_store),
]
