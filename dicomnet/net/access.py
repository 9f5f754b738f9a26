"""Who may associate with the listener: the called AE names the practice, the calling AE
must be one of its active devices (and come from its host, when the device asks for it, and
present the certificate it pins, when it pins one).

Every refusal decided here is also recorded (``RefusedAssociation``, one row per called
AE, calling AE and peer address, counted), for the practice admin's page."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation

from dicomnet.models import DeviceService, DicomServer, RefusedAssociation
from dicomnet.net.tls import PeerCertificate, pin_mismatch
from patients import audit
from patients.models import AuditEvent, Practice

log = logging.getLogger("dicomnet.net.access")

# A-ASSOCIATE-RJ (result, source, reason), PS3.8 9.3.4
REJECT_CALLING_AE = (0x01, 0x01, 0x03)  # permanent, service user, calling AE not recognised
REJECT_CALLED_AE = (0x01, 0x01, 0x07)  # permanent, service user, called AE not recognised


@dataclass(frozen=True)
class AssociationGrant:
    practice_id: int
    server_id: int
    calling_ae: str
    peer_address: str


@dataclass(frozen=True)
class AssociationRefusal:
    reject: tuple[int, int, int]
    reason: str


def authorise_association(
    *,
    called_ae: str,
    calling_ae: str,
    peer_address: str,
    peer_certificate: PeerCertificate | None = None,
) -> AssociationGrant | AssociationRefusal:
    """Grant or refuse (and record) the association; ``peer_certificate``: the one the
    caller presented over TLS, None over plain TCP."""
    called, calling = called_ae.strip(), calling_ae.strip()
    practice = Practice.objects.filter(ae_title=called).first()

    def refuse(reject: tuple[int, int, int], reason: str) -> AssociationRefusal:
        record_refusal(
            practice=practice,
            called_ae=called,
            calling_ae=calling,
            peer_address=peer_address,
            reason=reason,
        )
        return AssociationRefusal(reject, reason)

    if practice is None:
        return refuse(
            REJECT_CALLED_AE, f"called AE {called!r} is not the AE title of any practice here"
        )
    server = DicomServer.objects.for_practice(practice).filter(ae_title=calling).first()
    if server is None:
        return refuse(
            REJECT_CALLING_AE,
            f"calling AE {calling!r} is not a registered device of practice {practice.name!r}",
        )
    refusal = device_refusal(server, None)
    if refusal:
        return refuse(REJECT_CALLING_AE, f"calling AE {calling!r}: {refusal}")
    if server.check_host and peer_address != server.host:
        return refuse(
            REJECT_CALLING_AE,
            f"calling AE {calling!r} connected from {peer_address}, "
            f"but {server.name} is registered at {server.host}",
        )
    # Any certificate DICOM_TLS_CA signed passes the handshake; the pin says which one is
    # this device's, so one device's certificate can't call as another.
    mismatch = pin_mismatch(server, peer_certificate)
    if mismatch:
        return refuse(REJECT_CALLING_AE, f"calling AE {calling!r} ({server.name}): {mismatch}")
    return AssociationGrant(practice.pk, server.pk, calling, peer_address)


def record_refusal(
    *,
    practice: Practice | None,
    called_ae: str,
    calling_ae: str,
    peer_address: str,
    reason: str,
) -> None:
    """Count the refusal on its (called AE, calling AE, peer address) row, made if new.

    1. Update the row (``count + 1``, last seen, latest reason): one statement, no race.
    2. None updated: create it; a concurrent refusal that created it first makes this an
       IntegrityError, and the update is run again.
    A database error is logged and swallowed: the association is refused either way.
    """
    key = {
        "called_ae": called_ae[:16],
        "calling_ae": calling_ae[:16],
        "peer_address": peer_address[:64],
    }
    changes = {"reason": reason[:500], "practice": practice, "last_seen": timezone.now()}
    rows = RefusedAssociation.objects.filter(**key)
    try:
        # Each refusal is in the audit trail too: a Security Alert, node authentication.
        audit.record(
            "110113",
            action="E",
            event_type="110126",
            what="association_refused",
            outcome=AuditEvent.Outcome.MINOR_FAILURE,
            outcome_text=reason,
            practice_id=practice.pk if practice is not None else None,
            ae_title=calling_ae,
            address=peer_address,
            detail={"called_ae": called_ae[:16]},
        )
        if rows.update(count=F("count") + 1, **changes):
            return
        try:
            with transaction.atomic():
                RefusedAssociation.objects.create(**key, **changes)
        except IntegrityError:
            rows.update(count=F("count") + 1, **changes)
    except DatabaseError:
        log.exception("could not record the refused association from %s", peer_address)


def device_refusal(server: DicomServer | None, service: DeviceService | None) -> str | None:
    """``DicomServer.refusal`` for a log line: in English, whatever the practice's language."""
    with translation.override("en"):
        if server is None:
            return "the calling device was deleted from Nexrel"
        refusal = server.refusal(service)
        return str(refusal) if refusal else None


# The service a presentation context's abstract syntax is for (PS3.4 annexes), for the
# device switches. Verification needs none; an unknown class is left to pynetdicom.
_MWL_FIND = "1.2.840.10008.5.1.4.31"
_MPPS = "1.2.840.10008.3.1.2.3.3"
_QR = {
    "1.2.840.10008.5.1.4.1.2.1.1": DeviceService.FIND,  # patient root
    "1.2.840.10008.5.1.4.1.2.2.1": DeviceService.FIND,  # study root
    "1.2.840.10008.5.1.4.1.2.1.2": DeviceService.MOVE,
    "1.2.840.10008.5.1.4.1.2.2.2": DeviceService.MOVE,
    "1.2.840.10008.5.1.4.1.2.1.3": DeviceService.GET,
    "1.2.840.10008.5.1.4.1.2.2.3": DeviceService.GET,
}
_STORAGE_PREFIX = "1.2.840.10008.5.1.4.1.1."


def services_of_context(abstract_syntax: str) -> set[DeviceService]:
    """The services any of which makes a context usable. A storage class serves C-STORE to
    us, and also C-GET (its C-STOREs come back on the requestor's storage contexts)."""
    if abstract_syntax == _MWL_FIND:
        return {DeviceService.WORKLIST}
    if abstract_syntax == _MPPS:
        return {DeviceService.MPPS}
    if abstract_syntax in _QR:
        return {_QR[abstract_syntax]}
    if abstract_syntax.startswith(_STORAGE_PREFIX):
        return {DeviceService.STORE, DeviceService.GET}
    return set()


def refused_syntaxes(server: DicomServer, abstract_syntaxes: list[str]) -> dict[str, str]:
    """{abstract syntax: why} for the contexts this device may not use: refused at
    association time, so a device without C-MOVE is told so by the A-ASSOCIATE-AC, not by a
    failure status after the fact."""
    refused: dict[str, str] = {}
    for syntax in abstract_syntaxes:
        services = services_of_context(syntax)
        if services and all(device_refusal(server, s) for s in services):
            refused[syntax] = str(device_refusal(server, min(services)))
    return refused
