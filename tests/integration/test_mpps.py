"""MPPS N-CREATE / N-SET through the running listener, from a pynetdicom SCU as the device."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from dicomnet.dimse import status
from patients.models import AuditEvent
from tests.fixtures import wait_until
from worklist.models import PerformedProcedureStep, WorklistItem

pytestmark = pytest.mark.integration


@pytest.fixture
def device(listener) -> Iterator:
    """An association from the demo's CARESTREAM device, with the MPPS context."""
    _, port = listener
    ae = AE(ae_title="CARESTREAM")
    ae.add_requested_context(ModalityPerformedProcedureStep)
    ae.acse_timeout = ae.dimse_timeout = 10
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
    assert assoc.is_established
    yield assoc
    assoc.release()


def in_progress(item: WorklistItem | None, **keys: str) -> Dataset:
    """The N-CREATE attributes a device sends when it starts the step of ``item``."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = item.patient_name if item else "Inconnu^Patient"
    ds.PatientID = item.patient_id if item else ""
    step = Dataset()
    step.StudyInstanceUID = keys.get("uid", item.study_instance_uid if item else "")
    step.AccessionNumber = keys.get("accession", item.accession_number if item else "")
    step.ScheduledProcedureStepID = keys.get(
        "step", item.scheduled_procedure_step_id if item else ""
    )
    step.RequestedProcedureID = item.requested_procedure_id if item else ""
    ds.ScheduledStepAttributesSequence = [step]
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CARESTREAM"
    ds.PerformedProcedureStepStartDate = "20250102"
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.Modality = "IO"
    ds.PerformedSeriesSequence = []
    return ds


def finished(state: str) -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = state
    ds.PerformedProcedureStepEndDate = "20250102"
    ds.PerformedProcedureStepEndTime = "102000"
    series = Dataset()
    series.SeriesInstanceUID = generate_uid()
    series.ReferencedImageSequence = []
    ds.PerformedSeriesSequence = [series]
    return ds


def demo_item(station: str) -> WorklistItem:
    """The demo's first item of today for this device."""
    return WorklistItem.objects.filter(
        scheduled_station_ae_title=station, scheduled_start__date=timezone.localdate()
    ).earliest("scheduled_start")


def n_create(assoc, ds: Dataset, uid: str) -> int:
    answer, _ = assoc.send_n_create(ds, ModalityPerformedProcedureStep, uid)
    return answer.Status


def n_set(assoc, ds: Dataset, uid: str) -> Dataset:
    answer, _ = assoc.send_n_set(ds, ModalityPerformedProcedureStep, uid)
    return answer


def test_n_create_then_completed_moves_the_item_and_a_finished_step_is_frozen(listener, device):
    proc, _ = listener
    item = demo_item("CARESTREAM")
    uid = generate_uid()

    assert n_create(device, in_progress(item), uid) == status.SUCCESS
    item.refresh_from_db()
    assert item.status == WorklistItem.Status.IN_PROGRESS
    step = PerformedProcedureStep.objects.get(sop_instance_uid=uid)
    assert (step.worklist_item_id, step.calling_ae, step.status) == (
        item.pk,
        "CARESTREAM",
        PerformedProcedureStep.Status.IN_PROGRESS,
    )
    assert step.practice_id == item.practice_id

    assert n_set(device, finished("COMPLETED"), uid).Status == status.SUCCESS
    item.refresh_from_db()
    step.refresh_from_db()
    assert item.status == WorklistItem.Status.COMPLETED
    assert step.status == PerformedProcedureStep.Status.COMPLETED
    assert step.attributes["00400252"]["Value"] == ["COMPLETED"]  # kept as DICOM JSON

    # PS3.4 F.7.2.2: a completed step may no longer be updated.
    refused = n_set(device, finished("DISCONTINUED"), uid)
    assert refused.Status == status.PROCESSING_FAILURE
    assert refused.ErrorID == status.MPPS_MAY_NO_LONGER_BE_UPDATED
    item.refresh_from_db()
    assert item.status == WorklistItem.Status.COMPLETED
    wait_until(lambda: f"MPPS N-SET {uid} from CARESTREAM refused with 0x0110" in proc.output())

    # The same instance cannot be created twice.
    assert n_create(device, in_progress(item), uid) == status.DUPLICATE_SOP_INSTANCE

    # Each operation is in the audit trail, refusals included (110109 Order Record).
    events = AuditEvent.objects.filter(object_ref=f"mpps:{uid}").order_by("id")
    assert [(e.what, e.outcome) for e in events] == [
        ("mpps_n_create", AuditEvent.Outcome.SUCCESS),
        ("mpps_n_set", AuditEvent.Outcome.SUCCESS),
        ("mpps_n_set", AuditEvent.Outcome.MINOR_FAILURE),
        ("mpps_n_create", AuditEvent.Outcome.MINOR_FAILURE),
    ]
    assert {(e.event_id, e.ae_title) for e in events} == {("110109", "CARESTREAM")}


def test_discontinued_step_found_by_accession_number(device):
    item = demo_item("PLANMECA")
    uid = generate_uid()
    attributes = in_progress(item, uid="", step="")  # only the accession number links it

    assert n_create(device, attributes, uid) == status.SUCCESS
    item.refresh_from_db()
    assert item.status == WorklistItem.Status.IN_PROGRESS

    assert n_set(device, finished("DISCONTINUED"), uid).Status == status.SUCCESS
    item.refresh_from_db()
    assert item.status == WorklistItem.Status.DISCONTINUED


def test_refusals_unknown_instance_bad_status_and_unscheduled_exam(listener, device):
    proc, _ = listener
    unknown = generate_uid()
    answer = n_set(device, finished("COMPLETED"), unknown)
    assert answer.Status == status.NO_SUCH_SOP_INSTANCE
    wait_until(lambda: f"MPPS N-SET {unknown} from CARESTREAM refused with 0x0112" in proc.output())

    bad = in_progress(demo_item("SIRONA"))
    bad.PerformedProcedureStepStatus = "COMPLETED"  # N-CREATE must start IN PROGRESS
    assert n_create(device, bad, generate_uid()) == status.INVALID_ATTRIBUTE_VALUE
    assert demo_item("SIRONA").status == WorklistItem.Status.SCHEDULED

    # An exam nobody scheduled is recorded, with no item to move.
    before = dict(WorklistItem.objects.values_list("pk", "status"))
    uid = generate_uid()
    assert n_create(device, in_progress(None), uid) == status.SUCCESS
    assert PerformedProcedureStep.objects.get(sop_instance_uid=uid).worklist_item is None
    assert dict(WorklistItem.objects.values_list("pk", "status")) == before
