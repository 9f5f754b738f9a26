"""Retention (dicomnet/retention.py, manage.py apply_retention): a dry run deletes nothing;
a real run deletes exactly the expired studies, their files and previews, and audits each."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from dicomnet.models import DicomInstance, DicomStudy
from dicomnet.retention import expired_studies, last_visits
from patients.models import Appointment, AuditEvent, Patient
from tests.dicom_samples import ingest_dataset, intraoral

TODAY = dt.date(2026, 12, 1)


def _study(practice, patient: Patient | None, study_date: str) -> DicomInstance:
    ds = intraoral(
        patient_id=patient.chart_number if patient else "UNKNOWN-9",
        patient_name=f"{patient.family_name}^{patient.given_name}" if patient else "NOBODY^X",
        study_date=study_date,
    )
    return ingest_dataset(practice, ds)


def _visit(practice, patient: Patient, day: dt.date, status=Appointment.Status.COMPLETED):
    start = timezone.make_aware(dt.datetime.combine(day, dt.time(10)))
    Appointment.objects.create(
        practice=practice,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=30),
        status=status,
    )


@pytest.fixture
def policy(practice):
    Appointment.objects.for_practice(practice).delete()
    practice.retention_years = 10
    practice.save()
    gone = Patient.objects.create(
        practice=practice, chart_number="R-1", family_name="Ancien", given_name="Léo"
    )
    kept = Patient.objects.create(
        practice=practice, chart_number="R-2", family_name="Fidèle", given_name="Ana"
    )
    old = _study(practice, gone, "20100301")
    _visit(practice, gone, dt.date(2012, 5, 2))
    _visit(practice, gone, dt.date(2024, 1, 9), Appointment.Status.CANCELLED)  # not a visit
    kept_old = _study(practice, kept, "20090101")  # old image, but she came back in 2020
    _visit(practice, kept, dt.date(2020, 6, 1))
    unlinked = _study(practice, None, "20150101")  # no patient: counts from its own date
    recent_unlinked = _study(practice, None, "20200101")
    return {"gone": old, "kept": kept_old, "unlinked": unlinked, "recent": recent_unlinked}


def test_last_visit_and_what_expires(practice, policy):
    visits = last_visits(practice, TODAY)
    assert visits[policy["gone"].study.patient.pk] == dt.date(2012, 5, 2)
    assert visits[policy["kept"].study.patient.pk] == dt.date(2020, 6, 1)
    expired = {e.study.pk for e in expired_studies(practice, TODAY)}
    assert expired == {policy["gone"].study_id, policy["unlinked"].study_id}


def test_dry_run_deletes_nothing(practice, policy):
    before = DicomStudy.objects.count(), DicomInstance.objects.count()
    out = io.StringIO()
    call_command("apply_retention", "--today", TODAY.isoformat(), stdout=out)
    assert "would delete 2 studies" in out.getvalue()
    assert policy["gone"].study.study_instance_uid in out.getvalue()
    assert (DicomStudy.objects.count(), DicomInstance.objects.count()) == before
    assert default_storage.exists(policy["gone"].storage_key)
    assert not AuditEvent.objects.filter(event_id="110105").exists()


def test_apply_deletes_exactly_the_expired_studies_and_their_files(practice, policy):
    gone, unlinked = policy["gone"], policy["unlinked"]
    files = [k for i in (gone, unlinked) for k in (i.storage_key, i.preview_key, i.thumbnail_key)]
    assert all(default_storage.exists(k) for k in files)
    out = io.StringIO()
    call_command("apply_retention", "--apply", "--today", TODAY.isoformat(), stdout=out)
    remaining = set(DicomStudy.objects.values_list("pk", flat=True))
    assert gone.study_id not in remaining and unlinked.study_id not in remaining
    assert {policy["kept"].study_id, policy["recent"].study_id} <= remaining
    assert not any(default_storage.exists(k) for k in files)
    assert default_storage.exists(policy["kept"].storage_key)
    events = AuditEvent.objects.filter(event_id="110105").order_by("id")
    # Oldest first: Léo's 2010 image, then the unlinked 2015 one.
    assert [e.study_uid for e in events] == [
        gone.study.study_instance_uid,
        unlinked.study.study_instance_uid,
    ]
    assert events[0].action == "D" and events[0].detail["instances"] == 1
    # Running again finds nothing more to delete.
    out = io.StringIO()
    call_command("apply_retention", "--apply", "--today", TODAY.isoformat(), stdout=out)
    assert "deleting 0 studies" in out.getvalue()


def test_no_policy_keeps_everything_and_the_minimum_holds(practice):
    _study(practice, None, "19990101")
    out = io.StringIO()
    call_command("apply_retention", "--apply", stdout=out)
    assert "no retention policy" in out.getvalue()
    assert DicomStudy.objects.filter(study_date=dt.date(1999, 1, 1)).exists()
    practice.retention_years, practice.retention_legal_minimum_years = 3, 5
    with pytest.raises(ValidationError):
        practice.full_clean()
