"""Browser upload of .dcm files and zips: same ingest path as C-STORE, clear errors otherwise."""

from __future__ import annotations

import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django_q.models import OrmQ

from dicomnet.models import DicomInstance
from tests.dicom_samples import dicom_bytes


def dcm(name: str = "image.dcm", **kwargs) -> SimpleUploadedFile:
    kwargs.setdefault("patient_id", "1001")
    kwargs.setdefault("patient_name", "COTE^ZOE")
    return SimpleUploadedFile(name, dicom_bytes(**kwargs), content_type="application/dicom")


def spool_files(data_dir) -> list:
    spool = data_dir / "spool"
    return [p for p in spool.rglob("*") if p.is_file()] if spool.exists() else []


def queued_instance_ids() -> set[int]:
    return {task.task["args"][0] for task in OrmQ.objects.all()}


def test_upload_page_renders(clinician_client):
    response = clinician_client.get(reverse("dicom_upload"))
    assert response.status_code == 200
    assert b'type="file" name="files" multiple' in response.content


def test_upload_dcm_stores_instance_and_queues_processing(
    clinician_client, practice, django_capture_on_commit_callbacks, isolated_data
):
    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.post(reverse("dicom_upload"), {"files": [dcm()]})

    assert response.status_code == 200
    assert "received" in response.content.decode()
    instance = DicomInstance.objects.get()
    assert instance.practice == practice
    assert instance.peer_address == "upload by clinician"
    assert instance.state == DicomInstance.State.RECEIVED
    assert instance.spool_path and instance.spool_path in map(str, spool_files(isolated_data))
    # The same pipeline task as a C-STORE: queued once the row is committed.
    assert queued_instance_ids() == {instance.pk}


def test_same_file_twice_is_not_stored_twice(clinician_client):
    content = dicom_bytes(patient_id="1001", patient_name="COTE^ZOE")
    first = clinician_client.post(
        reverse("dicom_upload"), {"files": [SimpleUploadedFile("a.dcm", content)]}
    )
    assert "received" in first.content.decode()
    again = SimpleUploadedFile("again.dcm", content)
    response = clinician_client.post(reverse("dicom_upload"), {"files": [again]})
    assert response.status_code == 200
    assert "already received (identical)" in response.content.decode()
    assert DicomInstance.objects.count() == 1


def test_non_dicom_is_refused_and_nothing_stored(clinician_client, isolated_data):
    notes = SimpleUploadedFile("notes.txt", b"Dr Gauthier: call Zoe back tomorrow\n" * 20)
    response = clinician_client.post(reverse("dicom_upload"), {"files": [notes]})

    assert response.status_code == 400
    page = response.content.decode()
    assert "notes.txt" in page and "not a DICOM file" in page
    assert DicomInstance.objects.count() == 0
    assert spool_files(isolated_data) == []
    assert not OrmQ.objects.exists()


def test_mixed_upload_keeps_the_good_file_and_reports_the_bad(clinician_client):
    bad = SimpleUploadedFile("photo.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    response = clinician_client.post(reverse("dicom_upload"), {"files": [dcm("good.dcm"), bad]})
    assert response.status_code == 200
    rows = response.context["results"]
    assert [(r.name, r.ok) for r in rows] == [("good.dcm", True), ("photo.jpg", False)]
    assert rows[1].message == "not a DICOM file"
    assert DicomInstance.objects.count() == 1


def test_no_files_is_400(clinician_client):
    response = clinician_client.post(reverse("dicom_upload"), {})
    assert response.status_code == 400
    assert "Choose at least one file." in response.content.decode()
    assert DicomInstance.objects.count() == 0


def test_zip_of_several_files(clinician_client, practice, django_capture_on_commit_callbacks):
    study_uid = "1.2.826.0.1.3680043.8.498.1"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for n in range(3):
            zf.writestr(
                f"bitewings/IMG{n}.dcm",
                dicom_bytes(patient_id="1001", patient_name="COTE^ZOE", study_uid=study_uid),
            )
        zf.writestr("bitewings/", b"")  # a folder entry is skipped
    upload = SimpleUploadedFile("exam.zip", archive.getvalue(), content_type="application/zip")

    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.post(reverse("dicom_upload"), {"files": [upload]})

    assert response.status_code == 200
    rows = response.context["results"]
    assert [r.name for r in rows] == [f"exam.zip/bitewings/IMG{n}.dcm" for n in range(3)]
    assert all(r.ok and r.message == "received" for r in rows)
    instances = DicomInstance.objects.filter(practice=practice)
    assert instances.count() == 3
    assert queued_instance_ids() == set(instances.values_list("pk", flat=True))


def test_zip_without_dicom_is_400(clinician_client):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "hello")
    upload = SimpleUploadedFile("exam.zip", archive.getvalue())
    response = clinician_client.post(reverse("dicom_upload"), {"files": [upload]})
    assert response.status_code == 400
    assert "exam.zip/readme.txt" in response.content.decode()
    assert DicomInstance.objects.count() == 0
