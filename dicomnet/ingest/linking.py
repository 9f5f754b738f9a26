"""Link a study to its patient and appointment, and tell the practice about it."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from dicomnet.models import DicomInstance, DicomStudy, RetrieveJob
from patients.mail import email_notification_on_commit
from patients.matching import candidate, match_patient
from patients.models import Appointment, Notification, Patient
from patients.reasons import Reason
from patients.services import mark_unread

log = logging.getLogger("dicomnet.ingest.linking")


@functools.cache
def _scheduled_work_finder() -> Callable[[DicomStudy], Any]:
    return import_string(settings.NEXREL_SCHEDULED_WORK_FINDER)


def scheduled_work_for(study: DicomStudy) -> Any:
    """The scheduled work (a worklist item match) whose identifiers the study carries, or None.

    The worklist app provides the finder (``settings.NEXREL_SCHEDULED_WORK_FINDER``): the
    worklist imports dicomnet, so dicomnet names it only by setting (docs/architecture.md).
    """
    return _scheduled_work_finder()(study)


def imaging_appointment_for(
    patient: Patient, study_date: dt.date | None, study_time: dt.time | None
) -> Appointment | None:
    """The patient's imaging appointment on the study date, the closest in time if several."""
    if study_date is None:
        return None
    tz = timezone.get_current_timezone()
    day_start = timezone.make_aware(dt.datetime.combine(study_date, dt.time.min), tz)
    candidates = list(
        Appointment.objects.filter(
            patient=patient,
            needs_imaging=True,
            start__gte=day_start,
            start__lt=day_start + dt.timedelta(days=1),
        ).exclude(status=Appointment.Status.CANCELLED)
    )
    if not candidates:
        return None
    if study_time is None or len(candidates) == 1:
        return candidates[0]
    when = timezone.make_aware(dt.datetime.combine(study_date, study_time), tz)
    return min(candidates, key=lambda a: abs((a.start - when).total_seconds()))


def link_study(study: DicomStudy) -> DicomStudy:
    """Match the patient (unless a person already did), then the appointment; set status.

    1. A study carrying a worklist item's identifiers (``scheduled_work_for``) belongs to that
       item's patient and appointment, with certainty, and records the item.
    2. If its PatientID names someone else, it needs review: neither patient is linked.
    3. Otherwise the patient is matched by PatientID or name (``patients.matching``) and the
       appointment is the patient's imaging appointment of the study date.
    A patient linked by hand is kept; the item's appointment follows only if it is theirs.
    Before all that, a study an import job fetched for a patient (``dicomnet.qr.retrieve``)
    belongs to that patient: a person chose the chart when asking for it.
    """
    match = scheduled_work_for(study)
    conflict = match is not None and _contradicts(study, match)
    retrieved = None if study.manually_linked else _retrieved_for(study)
    if not study.manually_linked:
        if retrieved is not None:
            study.patient = retrieved.patient
            study.match_candidates = []
            why = Reason("imported", {"server": retrieved.server.name})
            conflict = False
        elif match is not None and conflict:
            study.patient = None
            study.match_candidates = _conflict_candidates(study, match)
            why = _conflict_reason(study, match)
        elif match is not None:
            study.patient = match.item.patient
            study.match_candidates = []
            why = Reason("worklist_item", _item_params(match))
        else:
            result = match_patient(
                practice=study.practice,
                patient_id=study.patient_id,
                patient_name=study.patient_name,
                birth_date=study.patient_birth_date,
            )
            study.patient = result.patient
            study.match_candidates = result.candidates
            why = result.why
        study.status_reason = why.english[:500]
        study.status_reason_params = why.stored()
    exact = (
        match is not None
        and study.patient is not None
        and match.item.linked_patient_id == study.linked_patient_id
    )
    study.worklist_item = match.item if exact else None
    if study.patient is not None:
        if exact and match.item.appointment is not None:
            study.appointment = match.item.appointment
        elif study.appointment is None or study.appointment.patient_id != study.linked_patient_id:
            study.appointment = imaging_appointment_for(
                study.patient, study.study_date, study.study_time
            )
        study.status = DicomStudy.Status.PROCESSED
    else:
        study.appointment = None
        study.status = DicomStudy.Status.NEEDS_REVIEW
    if exact or conflict:
        log.info(
            "study %s: %s -> %s",
            study.study_instance_uid,
            match.describe(),
            "linked exactly" if exact else "needs review (patient contradicts the item)",
        )
    if study.instances.filter(state=DicomInstance.State.ERROR).exists():
        study.status = DicomStudy.Status.ERROR
        study.status_reason_params = {}  # the errors themselves, as recorded
        study.status_reason = "; ".join(
            study.instances.filter(state=DicomInstance.State.ERROR).values_list("error", flat=True)[
                :3
            ]
        )
    study.save(
        update_fields=[
            "patient",
            "appointment",
            "worklist_item",
            "status",
            "status_reason",
            "status_reason_params",
            "match_candidates",
            "updated_at",
        ]
    )
    return study


def _retrieved_for(study: DicomStudy) -> RetrieveJob | None:
    """The latest import job of the practice that asked for this study for a patient."""
    jobs = (
        RetrieveJob.objects.for_practice(study.practice_id)
        .filter(patient__isnull=False)
        .annotate(uids_text=Cast("study_instance_uids", TextField()))
        .filter(uids_text__contains=f'"{study.study_instance_uid}"')
        .select_related("patient", "server")
        .order_by("-created_at")
    )
    return next((j for j in jobs if study.study_instance_uid in j.study_instance_uids), None)


def _contradicts(study: DicomStudy, match) -> bool:
    """The images name a patient (PatientID) other than the one the item was scheduled for."""
    patient_id = study.patient_id.strip()
    item = match.item
    return bool(patient_id) and patient_id not in {item.patient_id, item.patient.chart_number}


def _item_params(match) -> dict:
    return {"accession": match.item.accession_number, "key": match.key, "value": match.value}


def _conflict_reason(study: DicomStudy, match) -> Reason:
    item = match.item
    return Reason(
        "worklist_conflict",
        {
            **_item_params(match),
            "name": item.patient.full_name,
            "chart": item.patient.chart_number,
            "patient_id": study.patient_id.strip(),
        },
    )


def _conflict_candidates(study: DicomStudy, match) -> list[dict]:
    item = match.item
    candidates = [
        candidate(item.patient, "scheduled_on", **_item_params(match)),
    ]
    named = (
        Patient.objects.for_practice(study.practice_id)
        .filter(chart_number=study.patient_id.strip())
        .exclude(pk=item.linked_patient_id)
        .first()
    )
    if named is not None:
        candidates.append(candidate(named, "patient_id_chart"))
    return candidates


def link_to_patient(study: DicomStudy, patient: Patient, *, by: str = "") -> DicomStudy:
    """A person's decision: link the study to this patient and keep it so.

    The matcher's reason and candidates are replaced by the decision ("linked by hand to
    chart 1001 by clinician"): matching leaves a study linked by hand alone, so they would
    otherwise stay, saying for instance that no patient has this name.
    """
    if patient.practice_id != study.practice_id:
        raise ValueError("patient and study belong to different practices")
    why = Reason("linked_by_hand", {"chart": patient.chart_number, "user": by or "?"})
    study.patient = patient
    study.manually_linked = True
    study.status_reason = why.english[:500]
    study.status_reason_params = why.stored()
    study.match_candidates = []
    study.save(
        update_fields=[
            "patient",
            "manually_linked",
            "status_reason",
            "status_reason_params",
            "match_candidates",
            "updated_at",
        ]
    )
    log.info("study %s linked by hand to patient %s", study.pk, patient.chart_number)
    link_study(study)
    notify_new_images(study)
    return study


def notify_new_images(study: DicomStudy) -> Notification:
    """The study's notice, new or updated, unread again for everyone of the practice.

    It is stored as parameters (``Notification.params``) and rendered in each reader's
    language (``Notification.text``); ``message`` keeps the English, for the admin. Each SOP
    instance counts once, however many versions of it were received.
    """
    count = (
        study.instances.filter(state=DicomInstance.State.PROCESSED)
        .values("sop_instance_uid")
        .distinct()
        .count()
    )
    params: dict[str, Any] = {
        "dicom_name": study.patient_name,
        "needs_review": study.status == DicomStudy.Status.NEEDS_REVIEW,
    }
    mismatch = study.station_mismatch
    if mismatch:
        params["station"] = mismatch
    notification = Notification(
        practice=study.practice, patient=study.patient, count=count, params=params
    )
    with translation.override("en"):
        message = notification.text
    with transaction.atomic():
        notification, created = Notification.objects.update_or_create(
            study=study,
            defaults={
                "practice": study.practice,
                "patient": study.patient,
                "message": message[:300],
                "params": params,
                "count": count,
            },
        )
        # Unread again for everyone. Only a new notice, or those who had read it, are
        # emailed: the others were told when it became unread for them.
        readers = mark_unread(notification)
        if created:
            email_notification_on_commit(notification)
        elif readers:
            email_notification_on_commit(notification, among=readers)
    return notification
