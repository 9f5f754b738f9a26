"""C-STORE SCP: store each received object durably, then answer (a listener service module)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from pathlib import Path
from typing import cast

from django.db import DatabaseError, InterfaceError
from pynetdicom import evt
from pynetdicom.dimse_primitives import C_STORE

from dicomnet.dimse import status
from dicomnet.ingest.store import IngestError, OutOfResources, store_instance
from dicomnet.models import DeviceService
from dicomnet.net import audit_events, incoming
from dicomnet.net.access import AssociationGrant, device_refusal
from dicomnet.net.dispatch import grant_of_association, peers_of

log = logging.getLogger("dicomnet.ingest.scp")


def handle_store(event: evt.Event) -> int:
    """pynetdicom's EVT_C_STORE handler (``dicomnet.net.lean_store`` calls ``answer_store``)."""
    request = cast(C_STORE, event.request)
    return answer_store(
        event.assoc,
        sop_class_uid=str(request.AffectedSOPClassUID),
        sop_instance_uid=str(request.AffectedSOPInstanceUID),
        path=Path(event.dataset_path),
    )


def answer_store(assoc, *, sop_class_uid: str, sop_instance_uid: str, path: Path) -> int:
    """Store the received object durably and return the status to answer with.

    On any failure the object's temp file is removed. ``store_instance`` consumes the file
    on success; otherwise it stays in this process's spool temp directory, which the
    reconciler only clears once the process is gone.
    """
    grant = grant_of_association(assoc)
    started = time.perf_counter()
    received = incoming.take_received(path)
    size = received.size if received is not None else _size_of(path)
    result = _store(
        assoc,
        grant=grant,
        path=path,
        sop_uid=sop_instance_uid,
        sop_class_uid=sop_class_uid,
        received=received,
    )
    audit_events.note_store(assoc, sop_class_uid, result)
    log.info(
        "C-STORE %s answered 0x%04X",
        sop_instance_uid,
        result,
        extra={
            "command": "C_STORE",
            "status": f"0x{result:04X}",
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            "bytes": size,
            "sop_instance_uid": sop_instance_uid,
            "calling_ae": grant.calling_ae,
        },
    )
    if result != status.SUCCESS:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return result


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _next_position(assoc) -> int:
    """The rank of this object in its association (one thread per association: no lock)."""
    assoc.nexrel_objects = getattr(assoc, "nexrel_objects", 0) + 1
    return assoc.nexrel_objects


def _store(
    assoc,
    *,
    grant: AssociationGrant,
    path: Path,
    sop_uid: str,
    sop_class_uid: str,
    received: incoming.Received | None,
) -> int:
    try:
        write_error = received.error if received is not None else None
        if write_error is not None:
            reason = "disk full" if write_error.errno == errno.ENOSPC else "spool not writable"
            raise OutOfResources(f"{reason} while receiving: {write_error}")
        practice, server = peers_of(assoc, grant)
        refusal = device_refusal(server, DeviceService.STORE) if server is not None else None
        if refusal:
            log.warning("C-STORE from %s refused with 0x0124: %s", grant.calling_ae, refusal)
            return status.NOT_AUTHORIZED
        outcome = store_instance(
            path,
            practice=practice,
            server=server,
            calling_ae=grant.calling_ae,
            peer_address=grant.peer_address,
            expected_sop_instance_uid=sop_uid,
            expected_sop_class_uid=sop_class_uid,
            position=_next_position(assoc),
            digest=received.digest if received is not None else None,
        )
    except IngestError as exc:
        log.warning(
            "C-STORE %s from %s refused with 0x%04X: %s", sop_uid, grant.calling_ae, exc.status, exc
        )
        return exc.status
    except (DatabaseError, InterfaceError) as exc:  # reading the device, before store_instance
        log.warning(
            "C-STORE %s from %s refused with 0x%04X: database unavailable: %s",
            sop_uid,
            grant.calling_ae,
            status.OUT_OF_RESOURCES,
            exc,
        )
        return status.OUT_OF_RESOURCES
    except Exception:
        log.exception("C-STORE %s from %s: handler failure", sop_uid, grant.calling_ae)
        return status.STORE_HANDLER_FAILURE
    log.debug("stored %s as instance %s", sop_uid, outcome.instance.pk)
    return status.SUCCESS


HANDLERS = [(evt.EVT_C_STORE, handle_store)]
LEAN_STORE_ANSWER = answer_store  # the same answers on the lean path (dicomnet.net.lean_store)
