"""The study page (issue 9 §2): series and images (latest versions), teeth in the practice's
notation, a header dump without pixel data, the matching history, the findings; the original
of an image and the whole study as a zip; each access recorded; the front desk refused
(403), another practice's study not found (404)."""

from __future__ import annotations

import io
import zipfile

import pydicom
from django.urls import reverse

from dicomnet.ingest.review import assign
from dicomnet.models import DicomInstance
from patients.models import AccessLog, Patient
from tests.dicom_samples import ingest_dataset, intraoral


def _study_with_two_images(practice):
    first = ingest_dataset(practice, intraoral(PatientName="TREMBLAY^ZOE", instance_number=1))
    second = ingest_dataset(
        practice,
        intraoral(
            study_uid=first.study.study_instance_uid,
            series_uid=first.series.series_instance_uid,
            instance_number=2,
            seed=1,
        ),
    )
    DicomInstance.objects.filter(pk=first.pk).update(dental={"teeth": ["11", "21"]})
    return first, second


def test_study_page_shows_images_teeth_header_history_and_findings(
    clinician_client, clinician, practice
):
    first, second = _study_with_two_images(practice)
    study = first.study
    patient = Patient.objects.for_practice(practice).order_by("pk").first()
    assign([study], patient, by=clinician)
    practice.tooth_notation = "UNIVERSAL"
    practice.save(update_fields=["tooth_notation"])

    response = clinician_client.get(reverse("study_page", args=[study.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-instance="{first.sop_instance_uid}"' in html
    assert f'data-instance="{second.sop_instance_uid}"' in html
    assert '<td class="teeth">8, 9</td>' in html  # FDI 11 and 21 in the Universal notation
    assert "(0008,0018)" in html and "SOP Instance UID" in html  # the first image's header
    assert "(7FE0,0010)" not in html  # never the pixel data
    assert 'id="study-assignments"' in html and patient.full_name in html
    assert 'id="study-findings"' in html  # the exposure check ran on the intra-oral image
    assert AccessLog.objects.filter(action="view_study", object_ref=f"study:{study.pk}").exists()

    chosen = clinician_client.get(
        reverse("study_page", args=[study.pk]), {"instance": second.sop_instance_uid}
    ).content.decode()
    assert f'<tr data-instance="{second.sop_instance_uid}" class="chosen">' in chosen


def test_patient_page_links_the_study(clinician_client, practice):
    first, _ = _study_with_two_images(practice)
    patient = Patient.objects.for_practice(practice).order_by("pk").first()
    first.study.patient = patient
    first.study.save(update_fields=["patient"])
    html = clinician_client.get(reverse("patient_detail", args=[patient.pk])).content.decode()
    assert reverse("study_page", args=[first.study.pk]) in html


def test_original_and_zip_downloads_are_the_stored_objects_and_audited(clinician_client, practice):
    first, second = _study_with_two_images(practice)
    study = first.study
    url = reverse("study_instance_dicom", args=[study.pk, first.sop_instance_uid])
    response = clinician_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    data = b"".join(response.streaming_content)
    assert pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID == first.sop_instance_uid
    assert AccessLog.objects.filter(
        action="download_dicom", object_ref=f"instance:{first.pk}"
    ).exists()

    response = clinician_client.get(reverse("study_zip", args=[study.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    uids = {
        pydicom.dcmread(io.BytesIO(archive.read(name))).SOPInstanceUID
        for name in archive.namelist()
    }
    assert uids == {first.sop_instance_uid, second.sop_instance_uid}
    assert AccessLog.objects.filter(action="download_study_zip").count() == 1

    missing = reverse("study_instance_dicom", args=[study.pk, "1.2.3.4"])
    assert clinician_client.get(missing).status_code == 404


def test_front_desk_is_refused_and_another_practice_finds_nothing(
    client_for, frontdesk, other_practice, practice
):
    first, _ = _study_with_two_images(practice)
    study = first.study
    urls = [
        reverse("study_page", args=[study.pk]),
        reverse("study_zip", args=[study.pk]),
        reverse("study_instance_dicom", args=[study.pk, first.sop_instance_uid]),
    ]
    desk, other = client_for(frontdesk), client_for(other_practice.user)
    for url in urls:
        assert desk.get(url).status_code == 403, url
        assert other.get(url).status_code == 404, url
    assert not AccessLog.objects.filter(action__in=["view_study", "download_study_zip"]).exists()
