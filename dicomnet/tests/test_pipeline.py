"""``process_instance`` / ``run_pipeline`` on instances stored by ``store_instance``."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from PIL import Image
from pydicom.uid import generate_uid

from dicomnet.ingest.pipeline import process_instance, reprocess, run_pipeline
from dicomnet.ingest.store import store_instance
from dicomnet.models import DicomInstance, DicomSeries, DicomStudy
from patients.models import Appointment, Notification, Patient
from tests import dicom_samples

ZOE_BIRTH = "19880314"


def stored(practice, tmp_path: Path, ds) -> DicomInstance:
    path = dicom_samples.write(ds, tmp_path / "incoming" / f"{ds.SOPInstanceUID}.dcm")
    return store_instance(path, practice=practice, server=None, calling_ae="CARESTREAM").instance


def today() -> str:
    return timezone.localdate().strftime("%Y%m%d")


def test_pipeline_indexes_stores_renders_and_analyses(practice, tmp_path):
    ds = dicom_samples.intraoral(patient_name="NOBODY^KNOWN", study_date="20240102")
    instance = stored(practice, tmp_path, ds)
    spool_file = Path(instance.spool_path)
    original = spool_file.read_bytes()

    assert process_instance(instance.pk) == "processed"

    instance.refresh_from_db()
    study, series = instance.study, instance.series
    assert instance.state == DicomInstance.State.PROCESSED
    assert (study.study_instance_uid, series.series_instance_uid) == (
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
    )
    assert (study.patient_name, study.study_date, study.modality) == (
        "NOBODY^KNOWN",
        dt.date(2024, 1, 2),
        "IO",
    )
    assert study.metadata["00080018"]["Value"] == [ds.SOPInstanceUID]
    assert (study.series_count, study.instance_count, series.instance_count) == (1, 1, 1)
    assert (instance.rows, instance.columns, instance.frames) == (64, 64, 1)

    assert instance.storage_key == (
        f"{practice.pk}/{study.pk}/{series.pk}/{instance.pk}-v{instance.version}.dcm"
    )
    with default_storage.open(instance.storage_key, "rb") as fh:
        assert fh.read() == original
    with default_storage.open(instance.preview_key, "rb") as fh:
        assert Image.open(io.BytesIO(fh.read())).size == (64, 64)
    with default_storage.open(instance.thumbnail_key, "rb") as fh:
        thumb = Image.open(io.BytesIO(fh.read()))
        assert thumb.format == "WEBP" and max(thumb.size) <= settings.NEXREL_THUMBNAIL_SIZE
    assert instance.preview_error == ""
    assert instance.analysis["exposure_check"]["verdict"] in {
        "ok",
        "blank",
        "over_exposed",
        "under_exposed",
    }
    assert (instance.spool_path, spool_file.exists()) == ("", False)
    assert instance.processed_at is not None


def test_processing_twice_does_not_double_counts(practice, tmp_path):
    study_uid, series_uid = generate_uid(), generate_uid()
    instances = [
        stored(
            practice,
            tmp_path,
            dicom_samples.intraoral(
                study_uid=study_uid,
                series_uid=series_uid if n < 2 else None,
                instance_number=n,
                seed=n,
            ),
        )
        for n in range(3)
    ]
    for instance in instances:
        assert process_instance(instance.pk) == "processed"
    for instance in instances:
        assert process_instance(instance.pk) == "already processed"
    # A task that dies after its work but before its result is recorded runs again whole.
    again = DicomInstance.objects.get(pk=instances[0].pk)
    key = again.storage_key
    run_pipeline(again)

    study = DicomStudy.objects.get(study_instance_uid=study_uid)
    assert (study.series_count, study.instance_count) == (2, 3)
    assert sorted(study.series.values_list("instance_count", flat=True)) == [1, 2]
    assert DicomSeries.objects.count() == 2
    assert DicomInstance.objects.get(pk=again.pk).storage_key == key
    assert len(default_storage.listdir(str(Path(key).parent))[1]) == 2 * 3  # .dcm .webp .thumb.webp


def test_undecodable_image_is_stored_without_preview(practice, tmp_path):
    instance = stored(practice, tmp_path, dicom_samples.undecodable())

    assert process_instance(instance.pk) == "processed"

    instance.refresh_from_db()
    assert instance.state == DicomInstance.State.PROCESSED
    assert default_storage.exists(instance.storage_key)
    assert not instance.has_preview and instance.thumbnail_key == ""
    assert instance.preview_error.startswith("cannot decode pixel data")
    assert instance.analysis == {}
    assert instance.study.instance_count == 1


@pytest.mark.parametrize(
    "patient_id, patient_name",
    [("1001", "ANON"), ("", "COTE^ZOE"), ("X-99", "Côté^Zoé")],
    ids=["chart-number", "folded-name-and-dob", "accented-name-and-dob"],
)
def test_known_patient_is_linked_with_todays_imaging_appointment(
    practice, tmp_path, patient_id, patient_name
):
    zoe = Patient.objects.get(practice=practice, chart_number="1001")
    appointment = Appointment.objects.get(
        patient=zoe, needs_imaging=True, start__date=timezone.localdate()
    )
    study_uid = generate_uid()
    for n in range(2):
        instance = stored(
            practice,
            tmp_path,
            dicom_samples.intraoral(
                patient_id=patient_id,
                patient_name=patient_name,
                birth_date=ZOE_BIRTH,
                study_date=today(),
                study_time="081000",
                study_uid=study_uid,
                seed=n,
            ),
        )
        process_instance(instance.pk)

    study = DicomStudy.objects.get(study_instance_uid=study_uid)
    assert study.patient == zoe
    assert study.appointment == appointment
    assert study.status == DicomStudy.Status.PROCESSED
    notification = Notification.objects.get(study=study)
    assert notification.message == "2 new X-rays for Zoé Côté"
    assert (notification.patient, notification.count) == (zoe, 2)


def test_unmatched_patient_needs_review_with_candidates(practice, tmp_path):
    instance = stored(
        practice,
        tmp_path,
        dicom_samples.intraoral(patient_name="COTE^ZOE", birth_date="19900101", study_date=today()),
    )

    process_instance(instance.pk)

    study = DicomStudy.objects.get(pk=DicomInstance.objects.get(pk=instance.pk).study_id)
    assert study.status == DicomStudy.Status.NEEDS_REVIEW
    assert (study.patient, study.appointment) == (None, None)
    assert [c["chart_number"] for c in study.match_candidates] == ["1001"]
    assert study.match_candidates[0]["why"] == "same name, different date of birth"
    assert study.status_reason == "no patient with this name and date of birth"
    assert (
        Notification.objects.get(study=study).message == "1 new X-ray for COTE, ZOE (needs review)"
    )


def retries_of(instance_id: int) -> list[Schedule]:
    return [
        s
        for s in Schedule.objects.filter(func="dicomnet.ingest.pipeline.process_instance")
        if s.args in {repr((instance_id,)), str((instance_id,))}
    ]


def test_failures_are_retried_then_marked_error_with_the_reason(practice, tmp_path, settings):
    settings.NEXREL_TASK_MAX_ATTEMPTS = 3
    instance = stored(practice, tmp_path, dicom_samples.intraoral())
    # Final storage unusable: a regular file where its root directory should be.
    storage_root = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    storage_root.parent.mkdir(parents=True, exist_ok=True)
    storage_root.write_bytes(b"")

    results = [process_instance(instance.pk) for _ in range(3)]

    assert all(r.startswith("failed: ") for r in results)
    instance.refresh_from_db()
    assert instance.attempts == 3
    assert instance.state == DicomInstance.State.ERROR
    assert instance.error.split(":")[0] in {"FileExistsError", "NotADirectoryError"}
    retries = retries_of(instance.pk)
    assert len(retries) == 2, "a retry after each failure but the last"
    assert all(s.schedule_type == Schedule.ONCE and s.next_run > timezone.now() for s in retries)
    study = instance.study
    assert study.status == DicomStudy.Status.ERROR
    assert study.status_reason == instance.error
    assert Path(instance.spool_path).exists(), "nothing is lost: the spool copy stays"

    # Fixed, then reprocessed by a person: queued again and processed.
    storage_root.unlink()
    OrmQ.objects.all().delete()  # the task queued when the object was stored
    reprocess(instance)
    instance.refresh_from_db()
    assert (instance.state, instance.attempts, instance.error) == ("RECEIVED", 0, "")
    (task,) = [row.task for row in OrmQ.objects.all()]
    assert (task["func"], tuple(task["args"])) == (
        "dicomnet.ingest.pipeline.process_instance",
        (instance.pk,),
    )
    assert process_instance(instance.pk) == "processed"
    study.refresh_from_db()
    assert study.status != DicomStudy.Status.ERROR


def test_missing_spool_file_fails_and_schedules_a_retry(practice, tmp_path):
    instance = stored(practice, tmp_path, dicom_samples.intraoral())
    Path(instance.spool_path).unlink()

    result = process_instance(instance.pk)

    assert result.startswith("failed: FileNotFoundError")
    instance.refresh_from_db()
    assert (instance.attempts, instance.state) == (1, DicomInstance.State.RECEIVED)
    assert "neither a spool file nor a key" in instance.error
    (retry,) = retries_of(instance.pk)
    assert retry.next_run > timezone.now()


def test_a_claimed_instance_is_left_to_the_run_that_holds_it(practice, tmp_path):
    """The same instance queued twice: the second run backs off while the first holds it,
    and takes over once the claim is older than the task timeout (a dead worker's)."""
    instance = stored(practice, tmp_path, dicom_samples.intraoral())
    DicomInstance.objects.filter(pk=instance.pk).update(claimed_at=timezone.now())

    assert process_instance(instance.pk) == "being processed by another run"
    instance.refresh_from_db()
    assert instance.state == DicomInstance.State.RECEIVED and instance.study_id is None

    stale = timezone.now() - dt.timedelta(seconds=settings.Q_CLUSTER["timeout"] + 1)
    DicomInstance.objects.filter(pk=instance.pk).update(claimed_at=stale)
    assert process_instance(instance.pk) == "processed"
    instance.refresh_from_db()
    assert instance.claimed_at is None
    assert process_instance(instance.pk) == "already processed"
