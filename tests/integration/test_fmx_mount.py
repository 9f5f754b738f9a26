"""An FMX from a sensor to its mount: DCMTK storescu sends 18 intra-oral images with tooth
codes (SCT and SRT) for an FMX appointment to the real listener, a real worker processes
them, and each lands in its slot; the calendar's chip then says 18/18."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.test import Client
from django.utils import timezone

from dicomnet.models import DicomInstance, Mount
from patients.models import Patient, User
from tests import dental_samples, dicom_samples
from tests.fixtures import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("storescu"), reason="DCMTK not installed"),
]


def test_storescu_fmx_lands_in_its_mount_and_the_chip_says_18_of_18(
    practice, listener, worker, tmp_path
):
    _, port = listener
    patient = Patient.objects.create(
        practice=practice, chart_number="FMX-1", family_name="Dentine", given_name="Denis"
    )
    appointment = dental_samples.fmx_appointment(practice, patient, operatory="Op 1")
    mount = Mount.objects.get(appointment=appointment)
    assert mount.template.key == "fmx-18"
    uid = appointment.worklist_item.study_instance_uid
    series = dental_samples.fmx_series(
        study_uid=uid, patient_id="FMX-1", patient_name="Dentine^Denis"
    )
    files = [
        dicom_samples.write(ds, tmp_path / f"{n:02d}.dcm") for n, ds in enumerate(series, start=1)
    ]
    result = subprocess.run(
        ["storescu", "-aet", "CARESTREAM", "-aec", "NEXREL-CRM", "127.0.0.1", str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr

    wait_until(
        lambda: (
            DicomInstance.objects.filter(
                study__study_instance_uid=uid, state=DicomInstance.State.PROCESSED
            ).count()
            == 18
        ),
        timeout=180,
    )
    mount.refresh_from_db()
    assert mount.study is not None and mount.study.study_instance_uid == uid
    teeth = dental_samples.fmx_teeth()
    placements = list(mount.placements.select_related("instance"))
    assert sorted(p.position for p in placements) == list(range(1, 19))
    for placement in placements:
        assert placement.instance.dental["teeth"] == teeth[placement.position - 1]
        # sent out of the template's order: the n-th image sent is SEND_ORDER[n - 1]'s
        sent = dental_samples.SEND_ORDER[placement.instance.instance_number - 1]
        assert sent == placement.position

    client = Client()
    client.force_login(User.objects.get(username="clinician"))
    day = timezone.localtime(appointment.start).date().isoformat()
    calendar = client.get("/calendar/", {"date": day}).content.decode()
    chip = calendar.split(f'data-appointment="{appointment.pk}"')[1].split("</a>")[0]
    assert "18/18" in chip, chip
    page = client.get(f"/calendar/appointments/{appointment.pk}/").content.decode()
    assert "18/18" in page
