"""Modality Performed Procedure Step SCP (PS3.4 Annex F.7): what a device did with an item.

``create_step`` (N-CREATE) records a PerformedProcedureStep IN PROGRESS and finds the
worklist item it performs through its ScheduledStepAttributesSequence; ``update_step``
(N-SET) records the device's changes and, with COMPLETED or DISCONTINUED, closes the step.
The item follows its steps (``follow_steps``). Both raise ``MppsRefusal`` carrying the DIMSE
status; the pynetdicom handlers at the bottom only translate.
"""

from __future__ import annotations

import logging
from typing import cast

from django.db import IntegrityError, transaction
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)
from pynetdicom import evt
from pynetdicom.dimse_primitives import N_CREATE, N_SET
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from dicomnet.dimse import status
from dicomnet.ingest.parsing import json_metadata
from dicomnet.models import DeviceService
from dicomnet.net import audit_events
from dicomnet.net.access import device_refusal
from dicomnet.net.dispatch import grant_of, peers_of
from patients.models import Practice
from worklist.identify import item_for_identifiers
from worklist.models import PerformedProcedureStep, WorklistItem

log = logging.getLogger("worklist.mpps")

MPPS_SOP_CLASS = str(ModalityPerformedProcedureStep)
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
]
Step = PerformedProcedureStep.Status


class MppsRefusal(Exception):
    """A request the SCP answers with a failure status; ``str()`` is the reason, logged."""

    def __init__(self, dimse_status: int, reason: str, *, error_id: int | None = None):
        super().__init__(reason)
        self.dimse_status = dimse_status
        self.error_id = error_id

    def as_status(self) -> Dataset:
        answer = Dataset()
        answer.Status = self.dimse_status
        answer.ErrorComment = str(self)[:64]  # LO
        if self.error_id is not None:
            answer.ErrorID = self.error_id
        return answer


def _step_status(attributes: Dataset, *, required: bool) -> str | None:
    if "PerformedProcedureStepStatus" not in attributes:
        if required:
            raise MppsRefusal(status.MISSING_ATTRIBUTE, "no PerformedProcedureStepStatus")
        return None
    value = str(attributes.PerformedProcedureStepStatus or "").strip()
    if not value:
        raise MppsRefusal(status.MISSING_ATTRIBUTE_VALUE, "empty PerformedProcedureStepStatus")
    if value not in Step.values:
        raise MppsRefusal(
            status.INVALID_ATTRIBUTE_VALUE, f"PerformedProcedureStepStatus {value!r} is unknown"
        )
    return value


def scheduled_step_keys(attributes: Dataset) -> dict[str, list[str]]:
    """The identifiers of the items the step performs (ScheduledStepAttributesSequence)."""
    keys: dict[str, list[str]] = {"uids": [], "accessions": [], "steps": []}
    for entry in attributes.get("ScheduledStepAttributesSequence", None) or []:
        keys["uids"].append(str(entry.get("StudyInstanceUID", "") or ""))
        keys["accessions"].append(str(entry.get("AccessionNumber", "") or ""))
        keys["steps"].append(str(entry.get("ScheduledProcedureStepID", "") or ""))
    return keys


def create_step(
    *, practice: Practice, calling_ae: str, sop_instance_uid: str, attributes: Dataset
) -> PerformedProcedureStep:
    """N-CREATE: record the step and move its worklist item to IN_PROGRESS.

    1. The status must be IN PROGRESS (PS3.4 F.7.2.1), else 0106/0120/0121.
    2. The item is looked up in this practice only; a step for no known item (an
       unscheduled exam) is recorded without one.
    3. A second N-CREATE of the same SOP Instance UID in the practice gets 0111.
    """
    value = _step_status(attributes, required=True)
    if value != Step.IN_PROGRESS:
        raise MppsRefusal(
            status.INVALID_ATTRIBUTE_VALUE,
            f"N-CREATE must be IN PROGRESS, not {value}",
        )
    keys = scheduled_step_keys(attributes)
    match = item_for_identifiers(
        practice.pk,
        study_instance_uids=keys["uids"],
        accession_numbers=keys["accessions"],
        step_ids=keys["steps"],
    )
    try:
        with transaction.atomic():
            step = PerformedProcedureStep.objects.create(
                practice=practice,
                sop_instance_uid=sop_instance_uid,
                worklist_item=match.item if match else None,
                calling_ae=calling_ae,
                status=Step.IN_PROGRESS,
                attributes=json_metadata(attributes),
            )
            if match is not None:
                follow_steps(match.item)
    except IntegrityError:
        raise MppsRefusal(
            status.DUPLICATE_SOP_INSTANCE, f"MPPS {sop_instance_uid} already exists"
        ) from None
    log.info(
        "MPPS %s from %s: IN PROGRESS, %s",
        sop_instance_uid,
        calling_ae,
        match.describe() if match else "no worklist item (unscheduled)",
    )
    return step


def update_step(
    *, practice: Practice, calling_ae: str, sop_instance_uid: str, modifications: Dataset
) -> PerformedProcedureStep:
    """N-SET: apply the device's changes; COMPLETED or DISCONTINUED closes the step.

    An unknown step gets 0112; a closed one 0110 with Error ID A710 (PS3.4 F.7.2.2).
    """
    value = _step_status(modifications, required=False)
    with transaction.atomic():
        step = (
            PerformedProcedureStep.objects.for_practice(practice)
            .select_for_update()
            .filter(sop_instance_uid=sop_instance_uid)
            .first()
        )
        if step is None:
            raise MppsRefusal(
                status.NO_SUCH_SOP_INSTANCE, f"no MPPS {sop_instance_uid} in this practice"
            )
        if step.status != Step.IN_PROGRESS:
            raise MppsRefusal(
                status.PROCESSING_FAILURE,
                f"MPPS is {step.status}: it may no longer be updated",
                error_id=status.MPPS_MAY_NO_LONGER_BE_UPDATED,
            )
        step.attributes = {**step.attributes, **json_metadata(modifications)}
        if value is not None:
            step.status = value
        step.save(update_fields=["attributes", "status", "updated_at"])
        if step.worklist_item_id is not None:
            follow_steps(WorklistItem.objects.get(pk=step.worklist_item_id))
    log.info("MPPS %s from %s: %s", sop_instance_uid, calling_ae, step.status)
    return step


def follow_steps(item: WorklistItem) -> WorklistItem:
    """The item's status from its steps: COMPLETED if one was, else IN_PROGRESS if one is,
    else DISCONTINUED. Called in the transaction that changed a step; the item is locked."""
    item = WorklistItem.objects.select_for_update().get(pk=item.pk)
    statuses = set(item.mpps.values_list("status", flat=True))
    if Step.COMPLETED in statuses:
        new = WorklistItem.Status.COMPLETED
    elif Step.IN_PROGRESS in statuses:
        new = WorklistItem.Status.IN_PROGRESS
    elif Step.DISCONTINUED in statuses:
        new = WorklistItem.Status.DISCONTINUED
    else:
        return item
    if item.status != new:
        log.info("worklist item %s: %s -> %s", item.accession_number, item.status, new)
        item.status = new
        item.save(update_fields=["status", "updated_at"])
    return item


# pynetdicom: the listener adds the context and binds these handlers (see SERVICE_MODULES).


def configure_ae(ae) -> None:
    ae.add_supported_context(ModalityPerformedProcedureStep, TRANSFER_SYNTAXES)


def _practice(event: evt.Event) -> tuple[Practice, str]:
    grant = grant_of(event)
    practice, _ = peers_of(event.assoc, grant)
    return practice, grant.calling_ae


def _check_device(event: evt.Event) -> None:
    """Refuse (0x0124) a device that may not report procedure steps."""
    _, device = peers_of(event.assoc, grant_of(event))
    refusal = device_refusal(device, DeviceService.MPPS)
    if refusal:
        raise MppsRefusal(status.NOT_AUTHORIZED, refusal)


def _refused(operation: str, *, uid: str, calling_ae: str, exc: MppsRefusal) -> Dataset:
    log.warning(
        "MPPS %s %s from %s refused with 0x%04X: %s",
        operation,
        uid,
        calling_ae,
        exc.dimse_status,
        exc,
    )
    return exc.as_status()


def _answer_code(answer: int | Dataset) -> int:
    return answer if isinstance(answer, int) else int(answer.Status)


def handle_n_create(event: evt.Event) -> tuple[int | Dataset, Dataset | None]:
    answer, reply = _n_create(event)
    request = cast(N_CREATE, event.request)
    uid = str(getattr(reply, "AffectedSOPInstanceUID", "") or request.AffectedSOPInstanceUID)
    audit_events.record_operation(
        event, event_id="110109", action="C", what="mpps_n_create",
        answer=_answer_code(answer), object_ref=f"mpps:{uid}",
    )  # fmt: skip
    return answer, reply


def handle_n_set(event: evt.Event) -> tuple[int | Dataset, Dataset | None]:
    answer, reply = _n_set(event)
    uid = str(cast(N_SET, event.request).RequestedSOPInstanceUID or "")
    audit_events.record_operation(
        event, event_id="110109", action="U", what="mpps_n_set",
        answer=_answer_code(answer), object_ref=f"mpps:{uid}",
    )  # fmt: skip
    return answer, reply


def _n_create(event: evt.Event) -> tuple[int | Dataset, Dataset | None]:
    request = cast(N_CREATE, event.request)
    practice, calling_ae = _practice(event)
    uid = str(request.AffectedSOPInstanceUID or "")
    assigned = not uid
    uid = uid or generate_uid()
    try:
        if str(request.AffectedSOPClassUID) != MPPS_SOP_CLASS:
            raise MppsRefusal(status.NO_SUCH_SOP_CLASS, "only MPPS N-CREATE is supported")
        _check_device(event)
        try:
            attributes = event.attribute_list
        except Exception as exc:
            raise MppsRefusal(status.ATTRIBUTE_LIST_ERROR, f"unreadable: {exc}") from exc
        create_step(
            practice=practice, calling_ae=calling_ae, sop_instance_uid=uid, attributes=attributes
        )
    except MppsRefusal as exc:
        return _refused("N-CREATE", uid=uid, calling_ae=calling_ae, exc=exc), None
    except Exception:
        log.exception("MPPS N-CREATE %s from %s: handler failure", uid, calling_ae)
        return status.PROCESSING_FAILURE, None
    if assigned:  # PS3.7 10.1.5.1.4: the SCP names an instance the SCU did not
        reply = Dataset()
        reply.AffectedSOPInstanceUID = uid
        return status.SUCCESS, reply
    return status.SUCCESS, None


def _n_set(event: evt.Event) -> tuple[int | Dataset, Dataset | None]:
    request = cast(N_SET, event.request)
    practice, calling_ae = _practice(event)
    uid = str(request.RequestedSOPInstanceUID or "")
    try:
        if str(request.RequestedSOPClassUID) != MPPS_SOP_CLASS:
            raise MppsRefusal(status.NO_SUCH_SOP_CLASS, "only MPPS N-SET is supported")
        _check_device(event)
        try:
            modifications = event.modification_list
        except Exception as exc:
            raise MppsRefusal(status.ATTRIBUTE_LIST_ERROR, f"unreadable: {exc}") from exc
        update_step(
            practice=practice,
            calling_ae=calling_ae,
            sop_instance_uid=uid,
            modifications=modifications,
        )
    except MppsRefusal as exc:
        return _refused("N-SET", uid=uid, calling_ae=calling_ae, exc=exc), None
    except Exception:
        log.exception("MPPS N-SET %s from %s: handler failure", uid, calling_ae)
        return status.PROCESSING_FAILURE, None
    return status.SUCCESS, None


HANDLERS = [
    (evt.EVT_N_CREATE, handle_n_create),
    (evt.EVT_N_SET, handle_n_set),
]
