"""Talk to other DICOM systems as a user: C-ECHO, C-FIND, C-MOVE and C-GET (SCU).

Plain functions over pynetdicom. Failures become messages a person can act on: the
connection was refused, nothing answered in time, the association was rejected (and why),
or the remote answered with a failure status. The practice's AE title is the calling AE
and, for C-MOVE, the destination: the listener receives the images.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from pynetdicom.status import QR_FIND_SERVICE_CLASS_STATUS, QR_MOVE_SERVICE_CLASS_STATUS

from dicomnet.dimse import status
from dicomnet.dimse.values import parse_da, parse_tm
from dicomnet.models import DicomServer, DicomStudy
from dicomnet.net.association import (
    ScuError,
    associate,
    find_answers,
    new_ae,
    our_ae_title,
    peer_name,
    status_message,
)
from dicomnet.net.contexts import ALL_TRANSFER_SYNTAXES, DENTAL_STORAGE_CLASSES
from dicomnet.net.incoming import spool_tmp_dir

log = logging.getLogger("dicomnet.qr.scu")

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
FIND_MODELS = {
    "study": StudyRootQueryRetrieveInformationModelFind,
    "patient": PatientRootQueryRetrieveInformationModelFind,
}
MOVE_MODELS = {
    "study": StudyRootQueryRetrieveInformationModelMove,
    "patient": PatientRootQueryRetrieveInformationModelMove,
}
GET_MODELS = {
    "study": StudyRootQueryRetrieveInformationModelGet,
    "patient": PatientRootQueryRetrieveInformationModelGet,
}

# --- C-FIND ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FindRecord:
    """One C-FIND answer, decoded by the remote's SpecificCharacterSet."""

    level: str
    patient_name: str  # DICOM PN, Family^Given
    patient_id: str
    patient_birth_date: dt.date | None
    patient_sex: str
    study_instance_uid: str = ""
    study_date: dt.date | None = None
    study_time: dt.time | None = None
    study_description: str = ""
    accession_number: str = ""
    modalities: list[str] = field(default_factory=list)
    series_count: int | None = None
    instance_count: int | None = None
    series_instance_uid: str = ""
    series_number: int | None = None
    series_description: str = ""
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    instance_number: int | None = None
    already_imported: bool = False
    nexrel_study_id: int | None = None


def _date_range(value: str | tuple[dt.date | None, dt.date | None] | None) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        return value.strip()
    start, end = value
    first = f"{start:%Y%m%d}" if start else ""
    last = f"{end:%Y%m%d}" if end else ""
    return f"{first}-{last}"


def find_identifier(
    level: str,
    *,
    patient_name: str = "",
    patient_id: str = "",
    study_date: str = "",
    modality: str = "",
    accession: str = "",
    study_instance_uid: str = "",
    series_instance_uid: str = "",
) -> Dataset:
    """The identifier: the matching keys and every key read back, in UTF-8."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = level
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    if level == "PATIENT":
        ds.NumberOfPatientRelatedStudies = ""
        return ds
    ds.StudyInstanceUID = study_instance_uid
    ds.StudyDate = study_date
    ds.StudyTime = ""
    ds.AccessionNumber = accession
    ds.StudyDescription = ""
    if level == "STUDY":
        ds.ModalitiesInStudy = modality
        ds.NumberOfStudyRelatedSeries = ""
        ds.NumberOfStudyRelatedInstances = ""
        return ds
    ds.SeriesInstanceUID = series_instance_uid
    ds.Modality = modality
    ds.SeriesNumber = ""
    ds.SeriesDescription = ""
    if level == "SERIES":
        ds.NumberOfSeriesRelatedInstances = ""
        return ds
    ds.SOPInstanceUID = ""
    ds.SOPClassUID = ""
    ds.InstanceNumber = ""
    return ds


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        return int(str(ds.get(keyword, "")).strip())
    except (TypeError, ValueError):
        return None


def record_from(ds: Dataset, level: str) -> FindRecord:
    modalities = ds.get("ModalitiesInStudy") or ds.get("Modality") or []
    if isinstance(modalities, str):
        modalities = [modalities]
    count = _int(ds, "NumberOfStudyRelatedInstances")
    if level == "SERIES":
        count = _int(ds, "NumberOfSeriesRelatedInstances")
    return FindRecord(
        level=level,
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        patient_birth_date=parse_da(_text(ds, "PatientBirthDate")),
        patient_sex=_text(ds, "PatientSex"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        study_date=parse_da(_text(ds, "StudyDate")),
        study_time=parse_tm(_text(ds, "StudyTime")),
        study_description=_text(ds, "StudyDescription"),
        accession_number=_text(ds, "AccessionNumber"),
        modalities=[str(m) for m in modalities if str(m)],
        series_count=_int(ds, "NumberOfStudyRelatedSeries"),
        instance_count=count,
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        instance_number=_int(ds, "InstanceNumber"),
    )


def find_studies(
    server: DicomServer,
    *,
    patient_name: str = "",
    patient_id: str = "",
    study_date: str | tuple[dt.date | None, dt.date | None] | None = "",
    modality: str = "",
    accession: str = "",
    level: str = "STUDY",
    root: str | None = None,
    study_instance_uid: str = "",
    series_instance_uid: str = "",
    timeout: float | None = None,
) -> list[FindRecord]:
    """Ask ``server`` what it holds; mark the studies the practice already has.

    1. Study Root by default; Patient Root when asked, and always at PATIENT level.
    2. The identifier is sent in UTF-8 (ISO_IR 192); answers are decoded by their own
       SpecificCharacterSet (pydicom does so on access).
    3. A failure status or a lost association raises ``ScuError``; partial answers are
       not returned.
    """
    level = level.upper()
    if level not in LEVELS:
        raise ScuError(f"unknown query level {level!r}: use one of {', '.join(LEVELS)}")
    root = "patient" if level == "PATIENT" else (root or "study")
    if root not in FIND_MODELS:
        raise ScuError(f"unknown query root {root!r}: use 'study' or 'patient'")
    model = FIND_MODELS[root]
    identifier = find_identifier(
        level,
        patient_name=patient_name.strip(),
        patient_id=patient_id.strip(),
        study_date=_date_range(study_date),
        modality=modality.strip(),
        accession=accession.strip(),
        study_instance_uid=study_instance_uid.strip(),
        series_instance_uid=series_instance_uid.strip(),
    )
    ae = new_ae(server, timeout)
    ae.add_requested_context(model)
    assoc = associate(ae, server)
    peer = peer_name(server)
    try:
        if not assoc.accepted_contexts:
            raise ScuError(f"{peer} does not offer the {root} root query service")
        answers = find_answers(
            assoc, identifier, model, peer=peer, statuses=QR_FIND_SERVICE_CLASS_STATUS
        )
        records = [record_from(found, level) for found in answers]
    finally:
        if assoc.is_established:
            assoc.release()
    log.info("C-FIND %s level on %s: %d answer(s)", level, server.ae_title, len(records))
    return mark_imported(server, records)


def mark_imported(server: DicomServer, records: list[FindRecord]) -> list[FindRecord]:
    """Set ``already_imported`` on records whose study the practice already holds."""
    uids = {r.study_instance_uid for r in records if r.study_instance_uid}
    held = dict(
        DicomStudy.objects.for_practice(server.practice_id)
        .filter(study_instance_uid__in=uids)
        .values_list("study_instance_uid", "pk")
    )
    return [
        replace(r, already_imported=True, nexrel_study_id=held[r.study_instance_uid])
        if r.study_instance_uid in held
        else r
        for r in records
    ]


# --- C-MOVE / C-GET --------------------------------------------------------------------


@dataclass(frozen=True)
class RetrieveProgress:
    """Sub-operation counts (PS3.4 C.4.2.1.6) so far, over all the studies asked for.

    ``final`` is set on the last report, with ``status`` the last final DIMSE status and
    ``error`` a message when the retrieve failed.
    """

    completed: int = 0
    failed: int = 0
    warning: int = 0
    remaining: int = 0
    final: bool = False
    status: int | None = None
    error: str = ""
    cancelled: bool = False
    missing: tuple[str, ...] = ()  # studies for which the remote had nothing to send


def move_destination_unknown_message(server: DicomServer, destination: str) -> str:
    return (
        f"remote system does not know our AE title {destination}: "
        f"add it as a move destination on the remote side ({server.name}, {server.ae_title})"
    )


def move(
    server: DicomServer,
    *,
    study_uids: list[str],
    destination: str | None = None,
    should_cancel: Callable[[], bool] = lambda: False,
    timeout: float | None = None,
) -> Iterator[RetrieveProgress]:
    """C-MOVE the studies to ``destination`` (our own AE): the listener receives them."""
    destination = destination or our_ae_title(server)
    ae = new_ae(server, timeout)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    yield from _retrieve(
        ae,
        server=server,
        study_uids=study_uids,
        send=lambda assoc, ds: assoc.send_c_move(
            ds, destination, StudyRootQueryRetrieveInformationModelMove, msg_id=1
        ),
        model=StudyRootQueryRetrieveInformationModelMove,
        should_cancel=should_cancel,
        destination=destination,
    )


def get(
    server: DicomServer,
    *,
    study_uids: list[str],
    store: Callable[[Path, str, str], int],
    should_cancel: Callable[[], bool] = lambda: False,
    timeout: float | None = None,
) -> Iterator[RetrieveProgress]:
    """C-GET the studies over this association; each object goes to ``store``.

    ``store(path, sop_instance_uid, sop_class_uid)`` consumes the file written for one
    received object and returns the C-STORE status to answer. The storage contexts are
    proposed with the SCP role (PS3.7 D.3.3.4), so the remote may send on our association.
    """
    ae = new_ae(server, timeout)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for sop_class in storage_classes_for_get():
        # Dental images may be held compressed: accept them as they are, not only decoded.
        if sop_class in DENTAL_STORAGE_CLASSES:
            ae.add_requested_context(sop_class, ALL_TRANSFER_SYNTAXES)
        else:
            ae.add_requested_context(sop_class)
        roles.append(build_role(sop_class, scp_role=True))

    def handle_store(event: evt.Event) -> int:
        return _receive(event, store)

    yield from _retrieve(
        ae,
        server=server,
        study_uids=study_uids,
        send=lambda assoc, ds: assoc.send_c_get(
            ds, StudyRootQueryRetrieveInformationModelGet, msg_id=1
        ),
        model=StudyRootQueryRetrieveInformationModelGet,
        should_cancel=should_cancel,
        associate_kwargs={"ext_neg": roles, "evt_handlers": [(evt.EVT_C_STORE, handle_store)]},
    )


def storage_classes_for_get() -> list[str]:
    """The dental classes first, then the common ones: 127 contexts besides the C-GET one."""
    classes = list(DENTAL_STORAGE_CLASSES)
    classes += [cx.abstract_syntax for cx in StoragePresentationContexts if cx.abstract_syntax]
    return list(dict.fromkeys(classes))[:127]


def _receive(event: evt.Event, store: Callable[[Path, str, str], int]) -> int:
    tmp_dir = spool_tmp_dir()
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / f"cget-{uuid.uuid4().hex}.dcm"
    request = cast(C_STORE, event.request)
    try:
        path.write_bytes(event.encoded_dataset())
        result = store(path, str(request.AffectedSOPInstanceUID), str(request.AffectedSOPClassUID))
    except Exception:
        log.exception("C-GET: storing %s failed", request.AffectedSOPInstanceUID)
        result = status.STORE_HANDLER_FAILURE
    if result != status.SUCCESS:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return result


def _retrieve(
    ae: AE,
    *,
    server: DicomServer,
    study_uids: list[str],
    send: Callable,
    model,
    should_cancel: Callable[[], bool],
    destination: str = "",
    associate_kwargs: dict | None = None,
) -> Iterator[RetrieveProgress]:
    """One association, one request per study; counts add up over the studies.

    1. Each pending answer yields the counts so far (finished studies plus this one).
    2. When ``should_cancel()`` turns true, a C-CANCEL is sent and the remote's final
       answer (normally 0xFE00 Cancel) is awaited; no further study is asked for.
    3. A failure status stops the retrieve; its message names the cause.
    """
    peer = peer_name(server)
    try:
        assoc = associate(ae, server, **(associate_kwargs or {}))
    except ScuError as exc:
        yield RetrieveProgress(final=True, error=str(exc))
        return
    done = {"completed": 0, "failed": 0, "warning": 0}
    last = RetrieveProgress()
    final_code: int | None = None
    error = ""
    cancelled = False
    missing: list[str] = []
    try:
        if not any(cx.abstract_syntax == model for cx in assoc.accepted_contexts):
            yield RetrieveProgress(final=True, error=f"{peer} does not offer {model.name}")
            return
        for uid in study_uids:
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.StudyInstanceUID = uid
            current = {"completed": 0, "failed": 0, "warning": 0, "remaining": 0}
            cancel_sent = False
            final_code = None
            for answer, _identifier in send(assoc, ds):
                code = answer.get("Status") if answer else None
                if code is None:
                    error = (
                        f"{peer} closed the association or stopped answering during the retrieve"
                    )
                    break
                current = _counts(answer, current)
                if code in (status.PENDING, status.PENDING_WARNING):
                    last = _progress(done, current)
                    yield last
                    if not cancel_sent and should_cancel():
                        assoc.send_c_cancel(1, query_model=model)
                        cancel_sent = True
                    continue
                final_code = code
                if code == status.SUCCESS and "NumberOfCompletedSuboperations" not in answer:
                    # A final Success may omit the counts: every remaining one completed.
                    current["completed"] += current["remaining"]
                    current["remaining"] = 0
                break
            if final_code is None and not error:
                error = f"{peer} ended the retrieve of {uid} without a final status"
            for key in done:
                done[key] += current[key]
            if final_code == status.SUCCESS and not any(current[k] for k in done):
                missing.append(uid)
            if error:
                break
            if final_code == status.CANCEL or cancel_sent:
                cancelled = True
                break
            if final_code == status.MOVE_DESTINATION_UNKNOWN:
                error = move_destination_unknown_message(server, destination)
                break
            if final_code not in (status.SUCCESS, status.SUBOPS_COMPLETE_WITH_FAILURES):
                assert final_code is not None  # a missing final status is an error above
                error = status_message(
                    peer, code=final_code, answer=answer, table=QR_MOVE_SERVICE_CLASS_STATUS
                )
                break
            if should_cancel():
                cancelled = True
                break
    finally:
        if assoc.is_established:
            assoc.release()
    yield RetrieveProgress(
        **done,
        remaining=0 if not (error or cancelled) else last.remaining,
        final=True,
        status=final_code,
        error=error or _missing_message(peer, missing, len(study_uids)),
        cancelled=cancelled,
        missing=tuple(missing),
    )


def _missing_message(peer: str, missing: list[str], asked: int) -> str:
    """Only when the remote had none of the studies: some missing is a warning, not this."""
    if not missing or len(missing) < asked:
        return ""
    if asked == 1:
        return f"{peer} has no images for this study (Study Instance UID {missing[0]})"
    return f"{peer} has no images for any of the {asked} studies asked for"


def _counts(answer: Dataset, previous: dict) -> dict:
    """The counts of this answer; a final answer may omit those it has no news of."""
    keys = {
        "completed": "NumberOfCompletedSuboperations",
        "failed": "NumberOfFailedSuboperations",
        "warning": "NumberOfWarningSuboperations",
        "remaining": "NumberOfRemainingSuboperations",
    }
    counts = dict(previous)
    for name, keyword in keys.items():
        value = answer.get(keyword)
        if value is not None and value != "":
            counts[name] = int(value)
    return counts


def _progress(done: dict, current: dict) -> RetrieveProgress:
    return RetrieveProgress(
        completed=done["completed"] + current["completed"],
        failed=done["failed"] + current["failed"],
        warning=done["warning"] + current["warning"],
        remaining=current["remaining"],
    )
