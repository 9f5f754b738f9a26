"""The review queue's core (dicomnet.ingest.review): assign, create from DICOM, bulk, undo."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dicomnet.ingest import review
from dicomnet.models import DicomStudy, StudyAssignment
from patients.models import AccessLog, Appointment, Patient
from tests.dicom_samples import ingest_processed

STUDY_DATE = dt.date(2024, 1, 15)


def waiting(practice, **kwargs) -> DicomStudy:
    kwargs = {"patient_id": "X99", "patient_name": "LESTRADE^G", **kwargs}
    study = ingest_processed(practice, **kwargs).study
    study.refresh_from_db()
    assert study.status == DicomStudy.Status.NEEDS_REVIEW, study.status_reason
    return study


@pytest.fixture
def cote(practice) -> Patient:
    return Patient.objects.get(practice=practice, chart_number="1001")


def imaging_appointment(practice, patient) -> Appointment:
    start = timezone.make_aware(dt.datetime.combine(STUDY_DATE, dt.time(10, 0)))
    return Appointment.objects.create(
        practice=practice,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=30),
        needs_imaging=True,
    )


def test_assign_links_patient_and_appointment_replaces_reason_and_records_it(
    practice, clinician, cote
):
    study = waiting(practice)
    old_reason = study.status_reason
    appointment = imaging_appointment(practice, cote)

    [assignment] = review.assign([study], cote, by=clinician)

    study.refresh_from_db()
    assert study.patient == cote and study.appointment == appointment
    assert study.status == DicomStudy.Status.PROCESSED and study.manually_linked
    assert study.status_reason == "linked by hand to chart 1001 by clinician" != old_reason
    assert study.match_candidates == []
    assert (assignment.from_patient, assignment.to_patient, assignment.by) == (
        None,
        cote,
        clinician,
    )
    assert assignment.at is not None and assignment.undone_at is None
    assert AccessLog.objects.filter(action="assign_study", object_ref=f"study:{study.pk}").exists()


def test_undo_restores_the_study_as_it_was(practice, clinician, cote):
    study = waiting(practice)
    before = DicomStudy.objects.values().get(pk=study.pk)
    imaging_appointment(practice, cote)
    [assignment] = review.assign([study], cote, by=clinician)

    review.undo(assignment.batch, practice=practice, by=clinician)

    after = DicomStudy.objects.values().get(pk=study.pk)
    ignored = {"updated_at"}
    assert {k: v for k, v in after.items() if k not in ignored} == {
        k: v for k, v in before.items() if k not in ignored
    }
    assignment.refresh_from_db()
    assert assignment.undone_at is not None and assignment.undone_by == clinician
    with pytest.raises(review.ReviewError):
        review.undo(assignment.batch, practice=practice, by=clinician)
    assert study in review.review_queue(practice)


def test_undo_is_refused_while_a_later_assignment_stands(practice, clinician, cote):
    study = waiting(practice)
    [first] = review.assign([study], cote, by=clinician)
    other = Patient.objects.get(practice=practice, chart_number="1002")
    study.refresh_from_db()
    [second] = review.assign([study], other, by=clinician)
    assert second.from_patient == cote
    with pytest.raises(review.ReviewError):
        review.undo(first.batch, practice=practice, by=clinician)
    review.undo(second.batch, practice=practice, by=clinician)
    study.refresh_from_db()
    assert study.patient == cote


def test_bulk_assigns_studies_of_one_source_in_one_batch(practice, clinician, cote):
    studies = [waiting(practice, study_date=f"2024011{d}") for d in (5, 6, 7)]
    assignments = review.assign(studies, cote, by=clinician)
    assert len({a.batch for a in assignments}) == 1
    assert DicomStudy.objects.filter(patient=cote, pk__in=[s.pk for s in studies]).count() == 3

    review.undo(assignments[0].batch, practice=practice, by=clinician)
    assert (
        DicomStudy.objects.filter(
            pk__in=[s.pk for s in studies], status=DicomStudy.Status.NEEDS_REVIEW
        ).count()
        == 3
    )


def test_bulk_refuses_studies_of_different_sources(practice, clinician, cote):
    one = waiting(practice)
    other = waiting(practice, patient_id="X98", patient_name="HOLMES^S")
    with pytest.raises(review.ReviewError):
        review.assign([one, other], cote, by=clinician)
    assert not StudyAssignment.objects.exists()


def test_queue_groups_studies_by_source(practice, clinician):
    a1 = waiting(practice)
    a2 = waiting(practice, study_date="20240116")
    b = waiting(practice, patient_id="X98", patient_name="HOLMES^S")
    groups = review.source_groups(list(review.review_queue(practice)))
    assert [[s.pk for s in g.studies] for g in groups] == [[a1.pk, a2.pk], [b.pk]]
    assert groups[0].suggested_chart == "X99"


def test_assign_refuses_another_practices_patient(practice, clinician, other_practice):
    study = waiting(practice)
    with pytest.raises(review.ReviewError):
        review.assign([study], other_practice.patient, by=clinician)
    study.refresh_from_db()
    assert study.patient is None


def test_create_patient_from_dicom_demographics(practice, clinician):
    study = waiting(practice, patient_name="GAUTHIER^MARIE^CLAIRE", birth_date="19900102")
    patient, [assignment] = review.create_patient_and_assign(
        [study], chart_number="X99", by=clinician
    )
    assert (patient.family_name, patient.given_name) == ("Gauthier", "Marie Claire")
    assert patient.birth_date == dt.date(1990, 1, 2) and patient.chart_number == "X99"
    assert assignment.created_patient and assignment.to_patient == patient
    study.refresh_from_db()
    assert study.patient == patient and study.status == DicomStudy.Status.PROCESSED
    with pytest.raises(review.ReviewError):  # the chart number is now taken
        review.create_patient_and_assign(
            [waiting(practice, patient_id="X97")], chart_number="X99", by=clinician
        )


def test_create_patient_needs_a_name(practice, clinician):
    study = waiting(practice, patient_name="")
    with pytest.raises(review.ReviewError):
        review.create_patient_and_assign([study], chart_number="5000", by=clinician)
    assert not Patient.objects.filter(chart_number="5000").exists()
