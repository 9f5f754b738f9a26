"""The patient's copy of their record (dicomnet/export.py, issue 9 §6): the zip's DICOM
media, its summaries against the database, the audit, the clean-up, and the page's access."""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse
from pydicom import dcmread
from pydicom.fileset import FileSet
from pypdf import PdfReader

from dicomnet.export import SUMMARY_JSON, SUMMARY_PDF, export_record
from patients.models import AccessLog
from tests.record_samples import Record, latest, record

COMPONENT = re.compile(r"^[A-Z0-9_]{1,8}$")


@pytest.fixture
def rec(practice) -> Record:
    return record(practice)


def _export(rec: Record, user, tmp_path: Path) -> tuple[zipfile.ZipFile, Path]:
    out = io.BytesIO()
    export_record(rec.patient, user=user, out=out)
    archive = zipfile.ZipFile(out)
    root = tmp_path / "media"
    archive.extractall(root)
    return archive, root


def test_the_zip_is_dicom_media_of_the_latest_versions(rec, clinician, tmp_path):
    archive, root = _export(rec, clinician, tmp_path)
    names = set(archive.namelist())
    assert {"DICOMDIR", SUMMARY_JSON, SUMMARY_PDF} <= names
    dicom_files = names - {"DICOMDIR", SUMMARY_JSON, SUMMARY_PDF}
    for name in dicom_files:  # PS3.10 file IDs: ≤ 8 upper-case characters per component
        assert all(COMPONENT.match(part) for part in name.split("/")), name
    fs = FileSet(root / "DICOMDIR")
    expected = {i.sop_instance_uid for s in (rec.bitewings, rec.ct) for i in latest(s)}
    assert {str(i.SOPInstanceUID) for i in fs} == expected
    assert len(dicom_files) == len(expected) == 3  # the resent image once, the other out
    assert {str(uid) for uid in fs.find_values("StudyInstanceUID")} == {
        rec.bitewings.study_instance_uid,
        rec.ct.study_instance_uid,
    }
    assert rec.other.study_instance_uid not in {
        str(ds.StudyInstanceUID) for ds in (dcmread(root / f) for f in dicom_files)
    }
    (resent,) = fs.find(SOPInstanceUID=rec.resent.SOPInstanceUID)
    assert resent.load().PixelData == rec.resent.PixelData  # version 2's bytes, not v1's
    # The sensor sent no Study ID: filled for the STUDY record, the rest as sent.
    bitewing = resent.load()
    assert bitewing.StudyID and bitewing.PatientID == "1001"


def test_the_summary_matches_the_database(rec, clinician, tmp_path):
    archive, _root = _export(rec, clinician, tmp_path)
    data = json.loads(archive.read(SUMMARY_JSON))
    patient = rec.patient
    assert data["patient"] == {
        "chart_number": patient.chart_number,
        "family_name": patient.family_name,
        "given_name": patient.given_name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "health_card_number": patient.health_card_number,
    }
    assert data["exported_by"] == clinician.username
    assert data["practice"] == patient.practice.name
    studies = {s["study_instance_uid"]: s for s in data["studies"]}
    assert set(studies) == {rec.bitewings.study_instance_uid, rec.ct.study_instance_uid}
    for study in (rec.bitewings, rec.ct):
        study.refresh_from_db()
        got = studies[study.study_instance_uid]
        assert got["date"] == study.study_date.isoformat()
        assert got["modality"] == study.modality
        assert got["description"] == study.study_description
        assert got["images"] == len(latest(study))
        files = {f["sop_instance_uid"]: f["file_id"] for f in got["files"]}
        assert set(files) == {i.sop_instance_uid for i in latest(study)}
        assert all(f in archive.namelist() for f in files.values())
    assert studies[rec.bitewings.study_instance_uid]["teeth"] == ["16", "26", "36", "46"]
    assert studies[rec.ct.study_instance_uid]["teeth"] == []
    assert data["teeth"] == ["16", "26", "36", "46"]
    assert [s["date"] for s in data["studies"]] == sorted(s["date"] for s in data["studies"])


def test_the_pdf_says_the_same(rec, clinician, tmp_path):
    archive, _root = _export(rec, clinician, tmp_path)
    pdf = archive.read(SUMMARY_PDF)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for expected in (
        "Zoé Côté",
        "1001",
        "1988-03-14",
        "Bitewings <gauche> & droite",  # escaped for reportlab, shown as typed
        rec.bitewings.study_date.isoformat(),
        "2025-03-01",
        "16, 26, 36, 46",
        "Teeth imaged",
    ):
        assert expected in text, expected


def test_the_export_is_audited_and_leaves_no_temp_file(rec, clinician, tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    _export(rec, clinician, tmp_path)
    assert not [p for p in temp.rglob("*") if p.is_file()]
    assert not list(temp.glob("nexrel-export-*"))
    log = AccessLog.objects.get(action="export_record")
    assert (log.user, log.patient, log.practice_id) == (
        clinician,
        rec.patient,
        rec.patient.practice_id,
    )
    assert log.object_ref == f"record:{rec.patient.pk}:3"


def test_a_patient_without_images_gets_the_summaries(practice, clinician):
    patient = practice.patients.get(chart_number="1003")
    out = io.BytesIO()
    data = export_record(patient, user=clinician, out=out)
    assert data["studies"] == [] and data["teeth"] == []
    assert set(zipfile.ZipFile(out).namelist()) == {SUMMARY_JSON, SUMMARY_PDF}


def test_the_page_link_and_the_download(rec, clinician_client, client_for, frontdesk):
    page = clinician_client.get(reverse("patient_detail", args=[rec.patient.pk]))
    url = reverse("record_export", args=[rec.patient.pk])
    assert url.encode() in page.content
    response = clinician_client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert "DICOMDIR" in zipfile.ZipFile(io.BytesIO(body)).namelist()
    desk = client_for(frontdesk)
    assert url.encode() not in desk.get(reverse("patient_detail", args=[rec.patient.pk])).content
    assert desk.get(url).status_code == 403
    assert AccessLog.objects.filter(action="export_record").count() == 1


def test_the_practice_admin_may_and_another_practice_finds_nothing(
    rec, practice_admin, other_practice, client_for
):
    url = reverse("record_export", args=[rec.patient.pk])
    admin = client_for(practice_admin)
    # The admin reaches it from the chart, which shows the demographics and no image.
    chart = admin.get(reverse("patient_detail", args=[rec.patient.pk]))
    assert chart.status_code == 200
    assert url.encode() in chart.content
    assert b'class="thumb' not in chart.content and chart.context["timeline"] is None
    assert admin.get(url).status_code == 200
    assert client_for(other_practice.user).get(url).status_code == 404
    own = reverse("record_export", args=[other_practice.patient.pk])
    assert client_for(other_practice.user).get(own).status_code == 200


def test_in_french_the_link_and_the_pdf(rec, clinician, clinician_client, settings, tmp_path):
    from django.utils import translation

    settings.LANGUAGE_CODE = "fr-ca"
    page = clinician_client.get(reverse("patient_detail", args=[rec.patient.pk]))
    assert "Exporter la copie du dossier du patient" in page.content.decode()
    with translation.override("fr"):
        archive, _root = _export(rec, clinician, tmp_path)
    text = PdfReader(io.BytesIO(archive.read(SUMMARY_PDF))).pages[0].extract_text()
    assert "Dents imagées" in text and "Copie du dossier du patient" in text
