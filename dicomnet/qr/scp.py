"""Query/Retrieve SCP (PS3.4 Annex C): the practice's devices query and retrieve our archive.

C-FIND (Patient and Study Root, every level) is answered through
``dicomnet.net.dispatch.handle_find`` (which checks ``allow_find``):
1. the identifier is read in its SpecificCharacterSet (the device profile's when it declares
   none) and parsed (``dicomnet.qr.matching.parse_identifier``); a malformed one is answered 0xA900;
2. the practice's matches at the asked level are selected (``dicomnet.qr.matching``);
3. each is answered as it is read, with the keys asked for, in the device profile's
   character set, encoded once for the association's transfer syntax and kept
   (``dicomnet.qr.responses.encoded_answer``); a C-CANCEL seen between two responses ends
   the stream with 0xFE00. Any other failure is
   0xC311, logged with its traceback.

C-MOVE and C-GET (``allow_move``/``allow_get``) send the latest processed version of every
instance under the matches. pynetdicom runs the C-STORE sub-operations (over a new
association to the move destination, or over the same association for C-GET) and counts
them in the pending and final responses (0xB000 when some failed); a C-CANCEL stops them
with 0xFE00. Move destinations are only the practice's active devices: any other is 0xA801.
A destination with ``use_tls`` is called over TLS, as every SCU calls it
(``dicomnet.net.association.connection_kwargs``: verified, and its pin checked).
A device without ``allow_move`` or ``allow_get`` has those contexts rejected at association
time (``dicomnet.net.hardening.PracticeACSE._refuse_services``). Should the switch change
during an association, C-GET answers 0x0124, and C-MOVE 0xC514 (pynetdicom's C-MOVE
handler protocol cannot refuse before naming a destination) after our log line, with no
association to the destination opened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from pydicom import Dataset, dcmread
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from dicomnet.dimse import matching as dimse
from dicomnet.dimse import status
from dicomnet.ingest.storage import local_copy
from dicomnet.models import DeviceService, DicomInstance, DicomServer
from dicomnet.net.access import AssociationGrant, device_refusal
from dicomnet.net.association import ScuError, connection_kwargs
from dicomnet.net.dispatch import grant_of
from dicomnet.qr.matching import MalformedIdentifier, matching_instances, parse_identifier
from dicomnet.qr.responses import encoded_answer, level_answers
from patients import audit
from patients.models import AuditEvent

log = logging.getLogger("dicomnet.qr.scp")

DEFAULT_CHARACTER_SET = "ISO_IR 192"
PATIENT_ROOT = {
    str(PatientRootQueryRetrieveInformationModelFind),
    str(PatientRootQueryRetrieveInformationModelMove),
    str(PatientRootQueryRetrieveInformationModelGet),
}
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
MAX_CONTEXTS = 128  # PS3.8: odd presentation context ids 1..255


class RetrieveRefused(PermissionError):
    """The calling device may not retrieve (pynetdicom answers a C-MOVE refusal 0xC514)."""


def answer_find(
    read_identifier: Callable[[], Dataset],
    *,
    practice_id: int,
    patient_root: bool,
    character_set: str,
    calling_ae: str,
    retrieve_ae: str,
    is_cancelled: Callable[[], bool],
    implicit_vr: bool = True,
    little_endian: bool = True,
) -> Iterator[tuple[int, Dataset | None]]:
    """The C-FIND response stream for one query (steps in the module docstring).

    Answers go out as they are matched, encoded for the association's transfer syntax
    (``implicit_vr``, ``little_endian``) and kept (``responses.encoded_answer``).
    """
    sent = 0
    try:
        identifier = dimse.read_identifier(read_identifier, character_set)
        query = parse_identifier(identifier, patient_root=patient_root)
        for values in level_answers(query, practice_id=practice_id):
            if is_cancelled():
                log.info("C-FIND from %s cancelled after %d match(es)", calling_ae, sent)
                yield status.CANCEL, None
                return
            yield (
                status.PENDING,
                encoded_answer(
                    values,
                    query=query,
                    character_set=character_set,
                    retrieve_ae=retrieve_ae,
                    implicit_vr=implicit_vr,
                    little_endian=little_endian,
                ),
            )
            sent += 1
    except MalformedIdentifier as exc:
        log.warning("C-FIND from %s refused with 0xA900: %s", calling_ae, exc)
        yield status.IDENTIFIER_DOES_NOT_MATCH, None
        return
    except Exception:
        log.exception("C-FIND from %s failed after %d match(es)", calling_ae, sent)
        yield status.FIND_UNABLE_TO_PROCESS, None
        return
    log.info("C-FIND from %s: %d match(es)", calling_ae, sent)


def handle_find(
    event: evt.Event, *, grant: AssociationGrant, device: DicomServer
) -> Iterator[tuple[int, Dataset | None]]:
    """EVT_C_FIND for both roots, reached through ``dicomnet.net.dispatch.handle_find``."""
    syntax = UID(event.context.transfer_syntax)
    return answer_find(
        lambda: event.identifier,
        practice_id=grant.practice_id,
        patient_root=str(event.request.AffectedSOPClassUID) in PATIENT_ROOT,
        character_set=device.mwl_character_set or DEFAULT_CHARACTER_SET,
        calling_ae=grant.calling_ae,
        retrieve_ae=event.assoc.ae.ae_title,
        is_cancelled=lambda: event.is_cancelled,
        implicit_vr=syntax.is_implicit_VR,
        little_endian=syntax.is_little_endian,
    )


# ---------------------------------------------------------------------- C-MOVE / C-GET


def retrieve_contexts(instances: list[DicomInstance]) -> list[PresentationContext]:
    """Contexts to send ``instances`` as stored: uncompressed ones may be re-encoded."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for instance in instances:
        syntax = instance.transfer_syntax_uid or ExplicitVRLittleEndian
        if syntax in UNCOMPRESSED:
            wanted[(instance.sop_class_uid, "uncompressed")] = list(UNCOMPRESSED)
        else:
            wanted[(instance.sop_class_uid, syntax)] = [syntax]
    return [build_context(sop, syntaxes) for (sop, _), syntaxes in wanted.items()][:MAX_CONTEXTS]


def load_dataset(instance: DicomInstance) -> Dataset:
    """The stored object, or a stand-in that makes its C-STORE sub-operation fail (counted)."""
    try:
        with local_copy(instance) as path:
            return dcmread(path)
    except Exception:
        log.exception("instance %s could not be read for retrieval", instance.pk)
        failed = Dataset()
        failed.SOPInstanceUID = instance.sop_instance_uid
        return failed


def _send(
    instances: list[DicomInstance], is_cancelled: Callable[[], bool], what: str
) -> Iterator[int | tuple[int, Dataset | None]]:
    yield len(instances)
    for position, instance in enumerate(instances):
        if is_cancelled():
            log.info("%s cancelled after %d of %d instance(s)", what, position, len(instances))
            yield status.CANCEL, None
            return
        yield status.PENDING, load_dataset(instance)
    log.info("%s: %d instance(s) sent", what, len(instances))


def _audit_transfer(
    grant: AssociationGrant,
    what: str,
    *,
    instances: list[DicomInstance] | None = None,
    destination: str = "",
    refused: str = "",
) -> None:
    """The retrieval in the audit trail (110102 Begin Transferring DICOM Instances): to
    whom, which studies, and the patient when they are all one patient's; or the refusal."""
    instances = instances or []
    studies = {i.study for i in instances if i.study is not None}
    patients = {s.patient for s in studies}
    patient = patients.pop() if len(patients) == 1 else None
    try:
        audit.record(
            "110102",
            action="R",
            what=what,
            outcome=AuditEvent.Outcome.MINOR_FAILURE if refused else AuditEvent.Outcome.SUCCESS,
            outcome_text=refused or f"{len(instances)} instance(s)",
            practice_id=grant.practice_id,
            ae_title=grant.calling_ae,
            address=grant.peer_address,
            patient=patient,
            study_uid=next(iter(studies)).study_instance_uid if len(studies) == 1 else "",
            object_ref=" ".join(sorted(s.study_instance_uid for s in studies))[:255],
            detail={"destination": destination or grant.calling_ae, "instances": len(instances)},
        )
    except Exception:
        log.exception("audit event %s not written", what)


def _device(grant: AssociationGrant) -> DicomServer | None:
    return DicomServer.objects.for_practice(grant.practice_id).filter(pk=grant.server_id).first()


def _instances(event: evt.Event, grant: AssociationGrant, character_set: str):
    identifier = dimse.read_identifier(lambda: event.identifier, character_set)
    patient_root = str(event.request.AffectedSOPClassUID) in PATIENT_ROOT
    query = parse_identifier(identifier, patient_root=patient_root)
    return matching_instances(query, practice_id=grant.practice_id)


def handle_move(event: evt.Event) -> Iterator:
    """EVT_C_MOVE: destination, number of sub-operations, then the datasets to send."""
    grant = grant_of(event)
    device = _device(grant)
    refusal = device_refusal(device, DeviceService.MOVE)
    if refusal:
        log.warning("C-MOVE from %s refused: %s", grant.calling_ae, refusal)
        _audit_transfer(grant, "c_move", refused=refusal)
        raise RetrieveRefused(refusal)
    assert device is not None  # device_refusal refuses a deleted device
    destination_ae = str(event.move_destination).strip()
    destination = (
        DicomServer.objects.for_practice(grant.practice_id)
        .filter(ae_title=destination_ae, is_active=True)
        .first()
    )
    if destination is None:
        log.warning(
            "C-MOVE from %s refused with 0xA801: destination %r is not an active device "
            "of this practice",
            grant.calling_ae,
            destination_ae,
        )
        _audit_transfer(grant, "c_move", destination=destination_ae, refused="unknown destination")
        yield None, None
        return
    try:
        instances = _instances(event, grant, device.mwl_character_set or DEFAULT_CHARACTER_SET)
    except MalformedIdentifier as exc:
        log.warning("C-MOVE from %s refused: %s", grant.calling_ae, exc)
        raise
    log.info(
        "C-MOVE from %s: %d instance(s) to %s (%s:%s)",
        grant.calling_ae,
        len(instances),
        destination_ae,
        destination.host,
        destination.port,
    )
    try:
        connection, _ = connection_kwargs(destination)  # the pin check logs a mismatch
    except ScuError as exc:
        log.error("C-MOVE from %s refused: %s", grant.calling_ae, exc)
        raise
    _audit_transfer(grant, "c_move", instances=instances, destination=destination_ae)
    yield (
        destination.host,
        destination.port,
        {"contexts": retrieve_contexts(instances), **connection},
    )
    yield from _send(instances, lambda: event.is_cancelled, f"C-MOVE to {destination_ae}")


def handle_get(event: evt.Event) -> Iterator:
    """EVT_C_GET: number of sub-operations, then the datasets to send on this association."""
    grant = grant_of(event)
    device = _device(grant)
    refusal = device_refusal(device, DeviceService.GET)
    if refusal:
        log.warning("C-GET from %s refused with 0x0124: %s", grant.calling_ae, refusal)
        _audit_transfer(grant, "c_get", refused=refusal)
        yield 1
        yield status.NOT_AUTHORIZED, None
        return
    assert device is not None  # device_refusal refuses a deleted device
    try:
        instances = _instances(event, grant, device.mwl_character_set or DEFAULT_CHARACTER_SET)
    except MalformedIdentifier as exc:
        log.warning("C-GET from %s refused with 0xA900: %s", grant.calling_ae, exc)
        yield 1
        yield status.IDENTIFIER_DOES_NOT_MATCH, None
        return
    log.info("C-GET from %s: %d instance(s)", grant.calling_ae, len(instances))
    _audit_transfer(grant, "c_get", instances=instances)
    yield from _send(instances, lambda: event.is_cancelled, f"C-GET by {grant.calling_ae}")


# ---------------------------------------------------------------------- pynetdicom edge

QR_CLASSES = (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
)


def configure_ae(ae: AE) -> None:
    """The Q/R models, and role selection on the storage contexts for C-GET.

    A C-GET requestor proposes the SCP role for each storage class it accepts; accepting
    both roles keeps plain C-STORE senders (no role item: default roles) working.
    """
    for sop_class in QR_CLASSES:
        ae.add_supported_context(sop_class)
    for cx in list(ae.supported_contexts):
        syntax = cx.abstract_syntax
        if syntax is not None and syntax.startswith("1.2.840.10008.5.1.4.1.1."):
            ae.add_supported_context(syntax, cx.transfer_syntax, scu_role=True, scp_role=True)


HANDLERS = [(evt.EVT_C_MOVE, handle_move), (evt.EVT_C_GET, handle_get)]
FIND_HANDLERS = {
    str(PatientRootQueryRetrieveInformationModelFind): handle_find,
    str(StudyRootQueryRetrieveInformationModelFind): handle_find,
}
