"""Exact linking: a study carrying a worklist item's identifiers belongs to that item's patient
and appointment; a contradicting PatientID needs review; the name heuristics stay the fallback.

Each study goes through the real pipeline (``store_instance`` then ``process_instance``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet.ingest.linking import link_study, link_to_patient
from dicomnet.ingest.pipeline import process_instance
from dicomnet.ingest.store import store_instance
from dicomnet.models import DicomStudy
from patients.models import Appointment, Patient
from tests import dicom_samples
from worklist.models import WorklistItem


@pytest.fixture
def item(practice) -> WorklistItem:
    """Today's bitewings of Zoé Côté (chart 1001) on the CARESTREAM device."""
    return WorklistItem.objects.select_related("patient", "appointment").get(
        practice=practice,
        scheduled_station_ae_title="CARESTREAM",
        scheduled_start__date=timezone.localdate(),
        patient__chart_number="1001",
    )


def received(practice, tmp_path: Path, *, accession: str = "", step_id: str = "", **kwargs):
    """A study as the pipeline leaves it. The defaults would match no patient by name: the
    name is misspelt, there is no birth date, and the study date is not the appointment's."""
    kwargs.setdefault("patient_name", "Kote^Zoe")
    ds = dicom_samples.intraoral(study_date="20240102", **kwargs)
    ds.AccessionNumber = accession
    if step_id:
        request = Dataset()
        request.RequestedProcedureID = "RP-X"
        request.ScheduledProcedureStepID = step_id
        ds.RequestAttributesSequence = [request]
    path = dicom_samples.write(ds, tmp_path / "incoming" / f"{ds.SOPInstanceUID}.dcm")
    instance = store_instance(path, practice=practice, server=None, calling_ae="CARESTREAM")
    assert process_instance(instance.instance.pk) == "processed"
    return DicomStudy.objects.get(study_instance_uid=ds.StudyInstanceUID)


def assert_linked_exactly(study: DicomStudy, item: WorklistItem, key: str) -> None:
    assert study.status == DicomStudy.Status.PROCESSED
    assert (study.patient, study.appointment, study.worklist_item) == (
        item.patient,
        item.appointment,
        item,
    )
    assert key in study.status_reason and item.accession_number in study.status_reason


def test_study_instance_uid_links_exactly_despite_a_misspelt_name(practice, item, tmp_path):
    study = received(practice, tmp_path, study_uid=item.study_instance_uid)
    assert_linked_exactly(study, item, "StudyInstanceUID")


def test_accession_number_links_exactly(practice, item, tmp_path):
    study = received(practice, tmp_path, accession=item.accession_number)
    assert_linked_exactly(study, item, "AccessionNumber")


def test_scheduled_step_id_in_request_attributes_links_exactly(practice, item, tmp_path):
    study = received(practice, tmp_path, step_id=item.scheduled_procedure_step_id)
    assert_linked_exactly(study, item, "ScheduledProcedureStepID")


def test_the_items_own_patient_id_is_no_contradiction(practice, item, tmp_path):
    study = received(practice, tmp_path, accession=item.accession_number, patient_id="1001")
    assert_linked_exactly(study, item, "AccessionNumber")


def test_without_worklist_identifiers_the_heuristics_decide(practice, item, tmp_path):
    unmatched = received(practice, tmp_path)
    assert unmatched.status == DicomStudy.Status.NEEDS_REVIEW
    assert (unmatched.patient, unmatched.worklist_item) == (None, None)

    by_chart = received(practice, tmp_path, patient_id="1002")
    assert by_chart.status == DicomStudy.Status.PROCESSED
    assert by_chart.patient.chart_number == "1002"
    assert by_chart.worklist_item is None


def test_a_contradicting_patient_id_needs_review_and_links_neither(practice, item, tmp_path):
    study = received(
        practice,
        tmp_path,
        study_uid=item.study_instance_uid,
        patient_id="1002",  # Étienne Bélanger's chart number
        patient_name="Bélanger^Étienne",
        birth_date="19751102",
    )

    assert study.status == DicomStudy.Status.NEEDS_REVIEW
    assert (study.patient, study.appointment, study.worklist_item) == (None, None, None)
    assert study.status_reason.startswith(f"worklist item {item.accession_number}")
    assert "Zoé Côté (chart 1001)" in study.status_reason
    assert "PatientID 1002" in study.status_reason
    assert [c["chart_number"] for c in study.match_candidates] == ["1001", "1002"]


def test_a_manual_link_wins_and_takes_the_items_appointment_only_if_theirs(
    practice, item, tmp_path
):
    study = received(practice, tmp_path, study_uid=item.study_instance_uid, patient_id="1002")
    etienne = Patient.objects.get(practice=practice, chart_number="1002")

    link_to_patient(study, etienne)
    study.refresh_from_db()
    assert study.status == DicomStudy.Status.PROCESSED
    assert (study.patient, study.worklist_item) == (etienne, None)
    assert study.appointment != item.appointment

    link_to_patient(study, item.patient)
    study.refresh_from_db()
    assert (study.patient, study.appointment, study.worklist_item) == (
        item.patient,
        item.appointment,
        item,
    )
    link_study(study)  # matching again leaves the person's choice alone
    study.refresh_from_db()
    assert study.patient == item.patient and study.manually_linked


def test_another_practices_item_is_never_used(practice, other_practice, tmp_path):
    other, stranger = other_practice.practice, other_practice.patient  # chart 1001 too
    start = timezone.now().replace(microsecond=0)
    Appointment.objects.create(
        practice=other,
        patient=stranger,
        start=start,
        end=start + dt.timedelta(minutes=30),
        procedure_code="D0274",
        needs_imaging=True,
    )
    foreign = WorklistItem.objects.get(practice=other)

    study = received(
        practice, tmp_path, study_uid=generate_uid(), accession=foreign.accession_number
    )
    assert study.worklist_item is None
    assert study.status == DicomStudy.Status.NEEDS_REVIEW  # the misspelt name decides
