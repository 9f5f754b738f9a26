"""Modality Worklist C-FIND SCP (PS3.4 Annex K): a device asks what is scheduled for it.

One query (``answer_query``):
1. the identifier is decoded in its own SpecificCharacterSet (the device profile's when it
   declares none) and parsed into filters (``mwl_matching.parse_identifier``); a malformed
   one is answered 0xA900;
2. the practice's matching items are selected (``mwl_matching.select_items``);
3. each item is answered with the MWL return keys plus every attribute asked for, in the
   device profile's character set (``mwl_responses.encoded_response``); a C-CANCEL seen between
   two pending responses ends the stream with 0xFE00;
4. the query is recorded (``WorklistQuery``) and the items sent are marked fetched by the
   device, in one transaction, before the final status goes out: just before the last
   pending response, so that the commit overlaps the responses still in flight, or after
   the stream when it ends otherwise (no match, C-CANCEL, failure). Any other failure is
   0xC311, logged with its traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from django.db import transaction
from django.utils import timezone
from pydicom import Dataset
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityWorklistInformationFind

from dicomnet.dimse import matching as dimse
from dicomnet.dimse import status
from dicomnet.models import DicomServer
from dicomnet.net.access import AssociationGrant
from worklist.models import WorklistItem, WorklistQuery
from worklist.mwl_matching import MalformedIdentifier, parse_identifier, select_items
from worklist.mwl_responses import DEFAULT_CHARACTER_SET, encoded_response

log = logging.getLogger("worklist.mwl")


@transaction.atomic
def record_query(
    *,
    practice_id: int,
    device: DicomServer | None,
    calling_ae: str,
    identifier: dict,
    sent: list[int],
    outcome: str,
    duration_ms: float,
) -> WorklistQuery:
    """The "fetched by the device" step: the query row, and the items it returned."""
    now = timezone.now()
    if sent:
        returned = WorklistItem.objects.filter(pk__in=sent)
        returned.filter(first_fetched_at__isnull=True).update(first_fetched_at=now)
        returned.update(last_fetched_at=now, fetched_by=calling_ae[:16], updated_at=now)
    return WorklistQuery.objects.create(
        practice_id=practice_id,
        device=device,
        calling_ae=calling_ae[:16],
        query=identifier,
        result_count=len(sent),
        status=outcome[:40],
        duration_ms=duration_ms,
    )


def _as_json(identifier: Dataset) -> dict:
    try:
        return identifier.to_json_dict()
    except Exception as exc:  # a malformed identifier is still recorded
        return {"error": f"not representable as DICOM JSON: {exc}"}


def answer_query(
    read_identifier: Callable[[], Dataset],
    *,
    practice_id: int,
    device: DicomServer | None,
    calling_ae: str,
    is_cancelled: Callable[[], bool],
    implicit_vr: bool = True,
    little_endian: bool = True,
) -> Iterator[tuple[int, Dataset | None]]:
    """The C-FIND response stream for one MWL query (steps in the module docstring).

    Responses come encoded for the association's transfer syntax (``implicit_vr``,
    ``little_endian``), as ``mwl_responses.encoded_response`` explains.
    """
    started = time.perf_counter()
    character_set = device.mwl_character_set if device else DEFAULT_CHARACTER_SET
    sent: list[int] = []
    asked: dict = {}
    final, outcome, recorded = status.SUCCESS, "success", False
    try:
        identifier = dimse.read_identifier(read_identifier, character_set)
        asked = _as_json(identifier)
        query = parse_identifier(identifier)
        items = select_items(query, practice_id=practice_id, device=device)
        for position, item in enumerate(items, start=1):
            if is_cancelled():
                final, outcome = status.CANCEL, "cancelled"
                break
            response = encoded_response(
                item,
                query=query,
                character_set=character_set,
                implicit_vr=implicit_vr,
                little_endian=little_endian,
            )
            if position == len(items):
                _record(
                    practice_id,
                    device=device,
                    calling_ae=calling_ae,
                    asked=asked,
                    sent=[*sent, item.pk],
                    outcome=outcome,
                    started=started,
                )
                recorded = True
            yield status.PENDING, response
            sent.append(item.pk)
    except MalformedIdentifier as exc:
        log.warning("worklist query from %s refused with 0xA900: %s", calling_ae, exc)
        final, outcome = status.IDENTIFIER_DOES_NOT_MATCH, f"malformed: {exc}"
    except GeneratorExit:  # the association ended mid-stream
        if not recorded:
            _record(
                practice_id,
                device=device,
                calling_ae=calling_ae,
                asked=asked,
                sent=sent,
                outcome="aborted",
                started=started,
            )
        raise
    except Exception:
        log.exception("worklist query from %s failed", calling_ae)
        final, outcome = status.FIND_UNABLE_TO_PROCESS, "failed"
    if not recorded:
        _record(
            practice_id,
            device=device,
            calling_ae=calling_ae,
            asked=asked,
            sent=sent,
            outcome=outcome,
            started=started,
        )
    if final != status.SUCCESS:
        yield final, None


def _record(practice_id, *, device, calling_ae, asked, sent, outcome, started) -> None:
    duration_ms = (time.perf_counter() - started) * 1000
    try:
        record_query(
            practice_id=practice_id,
            device=device,
            calling_ae=calling_ae,
            identifier=asked,
            sent=sent,
            outcome=outcome,
            duration_ms=duration_ms,
        )
    except Exception:  # the answer stands; the record is lost, and said so
        log.exception("worklist query from %s could not be recorded", calling_ae)
        return
    log.info(
        "worklist query from %s: %d item(s), %s, %.1f ms",
        calling_ae,
        len(sent),
        outcome,
        duration_ms,
    )


# ---------------------------------------------------------------------- pynetdicom edge


def handle_find(
    event: evt.Event, *, grant: AssociationGrant, device: DicomServer
) -> Iterator[tuple[int, Dataset | None]]:
    """EVT_C_FIND for the MWL model, reached through ``dicomnet.net.dispatch.handle_find``."""
    syntax = UID(event.context.transfer_syntax)
    return answer_query(
        lambda: event.identifier,
        practice_id=grant.practice_id,
        device=device,
        calling_ae=grant.calling_ae,
        is_cancelled=lambda: event.is_cancelled,
        implicit_vr=syntax.is_implicit_VR,
        little_endian=syntax.is_little_endian,
    )


def configure_ae(ae: AE) -> None:
    ae.add_supported_context(ModalityWorklistInformationFind)


FIND_HANDLERS = {str(ModalityWorklistInformationFind): handle_find}
