"""Retention (issue 10 §5): a practice keeps a patient's images ``retention_years`` after
the patient's last visit, then ``manage.py apply_retention --apply`` deletes those studies,
their objects, previews and thumbnails. The audit trail keeps its events (each deletion adds
one: 110105 DICOM Study Deleted).

The last visit is the latest of the patient's appointments that took place (not cancelled,
not missed) and of their studies' dates; a study linked to no patient counts from its own
date. A practice without ``retention_years`` keeps everything.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max

from dicomnet.models import DicomInstance, DicomStudy
from patients import audit
from patients.models import Appointment, AuditEvent, Practice

log = logging.getLogger(__name__)

NOT_A_VISIT = (Appointment.Status.CANCELLED, Appointment.Status.NO_SHOW)


@dataclass(frozen=True)
class ExpiredStudy:
    study: DicomStudy
    last_visit: dt.date
    keep_until: dt.date


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February, in a year that has none
        return day.replace(year=day.year + years, day=28)


def last_visits(practice: Practice, today: dt.date) -> dict[int, dt.date]:
    """{patient id: the date of their last visit}, from appointments up to today and studies."""
    visits: dict[int, dt.date] = {}
    appointments = (
        Appointment.objects.for_practice(practice)
        .exclude(status__in=NOT_A_VISIT)
        .filter(start__date__lte=today)
        .values("patient_id")
        .annotate(last=Max("start"))
    )
    for row in appointments:
        visits[row["patient_id"]] = row["last"].date()
    studies = (
        DicomStudy.objects.for_practice(practice)
        .filter(patient__isnull=False, study_date__isnull=False)
        .values_list("patient")
        .annotate(last=Max("study_date"))
    )
    for patient, last in studies:
        visits[patient] = max(visits.get(patient, last), last)
    return visits


def expired_studies(practice: Practice, today: dt.date) -> list[ExpiredStudy]:
    """The practice's studies past their retention on ``today``, oldest visit first."""
    years = practice.retention_years
    if years is None:
        return []
    visits = last_visits(practice, today)
    expired = []
    studies = DicomStudy.objects.for_practice(practice).select_related("patient")
    for study in studies.order_by("study_date", "pk"):
        if study.patient is not None:
            last = visits.get(study.patient.pk)
        else:
            last = study.study_date or study.created_at.date()
        if last is None:
            last = study.created_at.date()
        keep_until = _years_after(last, years)
        if keep_until < today:
            expired.append(ExpiredStudy(study, last, keep_until))
    return expired


def _files(study: DicomStudy) -> list[str]:
    keys: list[str] = []
    for row in DicomInstance.objects.filter(study=study).values_list(
        "storage_key", "preview_key", "thumbnail_key"
    ):
        keys.extend(k for k in row if k)
    return keys


def delete_study(expired: ExpiredStudy, *, reason: str) -> int:
    """Delete the study's stored files, then its rows; audited. Files first: if storage fails
    the study stays, and the next run tries again (a file already gone is no error)."""
    study = expired.study
    files = _files(study)
    for key in files:
        default_storage.delete(key)
    instances = study.instances.count()
    with transaction.atomic():
        audit.record(
            "110105",
            action="D",
            what="retention_delete",
            practice_id=study.practice_id,
            patient=study.patient,
            study_uid=study.study_instance_uid,
            object_ref=f"study:{study.pk}",
            outcome=AuditEvent.Outcome.SUCCESS,
            outcome_text=reason,
            detail={
                "instances": instances,
                "files": len(files),
                "last_visit": expired.last_visit.isoformat(),
                "keep_until": expired.keep_until.isoformat(),
            },
        )
        study.delete()
    log.info(
        "retention: deleted study %s (%d instances, %d files), last visit %s",
        study.study_instance_uid,
        instances,
        len(files),
        expired.last_visit,
    )
    return len(files)
