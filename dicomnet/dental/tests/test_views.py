"""The mount page, its changes and PDF, the study API with its mount, the calendar's
"1/2 images" and the patient's tooth chart, through HTTP."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import zlib

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from dicomnet.models import DicomInstance, Mount
from patients import roles
from patients.models import Appointment, Patient
from tests import dental_samples, dicom_samples
from worklist.selectors import imaging_status


@pytest.fixture
def patient(practice) -> Patient:
    return Patient.objects.create(
        practice=practice, chart_number="M-2", family_name="Prémolaire", given_name="Paul"
    )


def appointment(practice, patient, code: str) -> Appointment:
    start = timezone.now().replace(microsecond=0)
    return Appointment.objects.create(
        practice=practice,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=30),
        procedure_code=code,
        procedure_description="Radiographs",
        needs_imaging=True,
    )


def bitewing(uid: str, n: int, right: bool):
    teeth = dental_samples.fmx_teeth("bitewings-2")[0 if right else 1]
    ds = dicom_samples.intraoral(study_uid=uid, instance_number=n, patient_id="M-2")
    ds.PrimaryAnatomicStructureSequence = [dental_samples.tooth_item(t) for t in teeth]
    return ds


@pytest.fixture
def two_bitewings(practice, patient):
    visit = appointment(practice, patient, "02142")
    uid = visit.worklist_item.study_instance_uid
    assert "received" not in imaging_status(visit).keys
    dicom_samples.ingest_dataset(practice, bitewing(uid, 1, right=False))
    step = next(s for s in imaging_status(visit).steps if s.key == "received")
    assert (step.count, step.total) == (1, 2)
    dicom_samples.ingest_dataset(practice, bitewing(uid, 2, right=True))
    return Mount.objects.get(appointment=visit)


def test_the_appointment_page_and_chip_count_the_mount(two_bitewings, clinician_client):
    mount = two_bitewings
    page = clinician_client.get(f"/calendar/appointments/{mount.appointment_id}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "(2/2 images)" in html and f"/dicom/mounts/{mount.pk}/" in html


def test_the_mount_page_shows_slots_teeth_and_links_to_the_viewer(
    two_bitewings, clinician_client, practice
):
    mount = two_bitewings
    left = DicomInstance.objects.get(study=mount.study, instance_number=1)
    html = clinician_client.get(f"/dicom/mounts/{mount.pk}/").content.decode()
    assert html.count('class="mount-slot') == 2
    assert '<span class="tooth">24</span>' in html and '<span class="tooth">17</span>' in html
    assert (
        f"/viewer/studies/{mount.study.study_instance_uid}/?instance="
        f"{left.sop_instance_uid}&amp;mount={mount.pk}"
    ) in html
    assert f"/dicom/instances/{left.pk}/thumbnail.webp" in html
    practice.tooth_notation = "UNIVERSAL"
    practice.save()
    html = clinician_client.get(f"/dicom/mounts/{mount.pk}/").content.decode()
    assert '<span class="tooth">12</span>' in html  # 24 in Universal
    assert '<span class="tooth">2</span>' in html  # 17


def test_a_move_by_the_script_answers_the_grid_and_is_recorded(
    two_bitewings, clinician_client, clinician
):
    mount = two_bitewings
    left = DicomInstance.objects.get(study=mount.study, instance_number=1)
    response = clinician_client.post(
        f"/dicom/mounts/{mount.pk}/change/",
        {"action": "move", "instance": left.pk, "position": 1},
        headers={"X-Requested-With": "fetch"},
    )
    assert response.status_code == 200 and 'id="mount-grid"' in response.content.decode()
    assert mount.placements.get(position=1).instance == left
    change = mount.changes.get(user=clinician)
    assert (change.action, change.from_position, change.to_position) == ("swap", 2, 1)
    response = clinician_client.post(
        f"/dicom/mounts/{mount.pk}/change/",
        {"action": "rotate", "instance": left.pk, "degrees": 90},
    )
    assert response.status_code == 302
    html = clinician_client.get(f"/dicom/mounts/{mount.pk}/").content.decode()
    assert "transform: rotate(90deg)" in html


def test_the_front_desk_may_not_change_a_mount(two_bitewings, client_for, frontdesk):
    mount = two_bitewings
    response = client_for(frontdesk).post(
        f"/dicom/mounts/{mount.pk}/change/", {"action": "remove", "instance": 1}
    )
    assert response.status_code == 403


def test_the_pdf_names_practice_patient_and_teeth(two_bitewings, clinician_client, practice):
    response = clinician_client.get(f"/dicom/mounts/{two_bitewings.pk}/mount.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = _pdf_text(response.content)
    mount = two_bitewings
    assert practice.name in text and "Paul Prémolaire" in text and "Chart M-2" in text
    assert mount.study.study_date.isoformat() in text and "2 bitewings" in text
    assert "17 16 15 14 47 46 45 44" in text and "24 25 26 27 34 35 36 37" in text


def _pdf_text(pdf: bytes) -> str:
    """The text drawn by the PDF's content streams (reportlab's, deflated or not)."""
    chunks = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        data = match.group(1)
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        chunks.append(data.decode("latin-1"))
    text = "".join(re.findall(r"\((.*?)\) Tj", "".join(chunks)))
    return re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), text)


def test_the_study_api_has_its_mount_in_fdi(
    two_bitewings, clinician_client, client_for, other_practice
):
    mount = two_bitewings
    study = mount.study
    body = clinician_client.get(f"/api/dental/studies/{study.pk}/").json()
    placed = dict(mount.placements.values_list("position", "instance_id"))
    assert body["id"] == study.pk
    right = ["17", "16", "15", "14", "47", "46", "45", "44"]
    left = ["24", "25", "26", "27", "34", "35", "36", "37"]
    assert body["mount"] == {
        "template": "2 bitewings",
        "slots": [
            {"position": 1, "teeth": right, "instance": placed[1]},
            {"position": 2, "teeth": left, "instance": placed[2]},
        ],
    }
    other = other_practice.user
    other.groups.add(Group.objects.get(name=roles.CLINICIAN))
    assert client_for(other).get(f"/api/dental/studies/{study.pk}/").status_code == 404


def test_the_tooth_chart_dates_each_tooth_and_lists_its_images(
    two_bitewings, clinician_client, patient
):
    url = f"/patients/{patient.pk}/"
    html = clinician_client.get(url).content.decode()
    today = two_bitewings.study.study_date.isoformat()
    assert 'data-tooth="36" href="?tooth=36#tooth-chart"' in html
    cell = html.split('data-tooth="36"')[1].split("</a>")[0]
    assert today in cell
    assert "&nbsp;" in html.split('data-tooth="18"')[1].split("</a>")[0]  # no image of 18
    html = clinician_client.get(url, {"tooth": "36"}).content.decode()
    assert 'id="tooth-images" data-tooth="36"' in html
    assert "Tooth 36: 1 image" in html


def test_the_mount_page_in_french(two_bitewings, clinician_client, settings):
    clinician_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    html = clinician_client.get(f"/dicom/mounts/{two_bitewings.pk}/").content.decode()
    assert "2/2 images" in html and "Imprimer / PDF" in html and "Pivoter à gauche" in html
