"""End to end, in Chromium against the real web server, DICOM listener and django-q2 cluster:
the front desk books an imaging appointment on the calendar, the device fetches it with DCMTK
`findscu -W`, sends an image carrying its StudyInstanceUID and accession number with
`storescu`, and the open calendar shows "images received" and "linked" on exactly that
appointment, by its own refresh (htmx), with no reload."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from dicomnet.models import DicomStudy
from patients.models import Appointment, Patient
from tests.browser import assert_clean
from tests.fixtures import PYDICOM_TEST_FILES
from worklist.models import WorklistItem

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
    pytest.mark.skipif(not shutil.which("findscu"), reason="DCMTK not installed"),
]

DEVICE = "CARESTREAM"  # the demo's device in OP-1


def find_worklist(port: int, day: dt.date, out: Path) -> list[pydicom.Dataset]:
    """What the device sees: `findscu -W` for its station today, answers saved as files."""
    out.mkdir()
    result = subprocess.run(
        [
            "findscu",
            "-W",
            "-aet",
            DEVICE,
            "-aec",
            "NEXREL-CRM",
            "-X",
            "-od",
            str(out),
            "-k",
            f"ScheduledProcedureStepSequence[0].ScheduledStationAETitle={DEVICE}",
            "-k",
            f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={day:%Y%m%d}",
            "-k",
            "ScheduledProcedureStepSequence[0].Modality",
            "-k",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID",
            "-k",
            "AccessionNumber",
            "-k",
            "StudyInstanceUID",
            "-k",
            "PatientName",
            "-k",
            "PatientID",
            "127.0.0.1",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def xray_for(item: WorklistItem, path: Path, *, study_time: str) -> Path:
    """An image as a worklist-aware device sends it: the item's UID, accession and patient."""
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "CT_small.dcm")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = item.patient_id
    ds.PatientName = item.patient_name
    ds.PatientBirthDate = item.patient_birth_date.strftime("%Y%m%d")
    ds.StudyInstanceUID = item.study_instance_uid
    ds.AccessionNumber = item.accession_number
    ds.StudyDate = timezone.localdate().strftime("%Y%m%d")
    ds.StudyTime = study_time
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def chips(page, appointment: Appointment) -> list[str]:
    return page.locator(
        f'#calendar-body [data-appointment="{appointment.pk}"] .chip'
    ).all_inner_texts()


def test_book_fetch_send_and_watch_the_calendar(
    worker,
    listener,
    web_server,
    browser_page,
    tmp_path,
):
    page, problems = browser_page
    listener_proc, port = listener
    today = timezone.localdate()
    expect = sync_api.expect
    # No internet: anything not from our server is refused, and counts as a problem.
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(web_server)
            else (problems.append(f"external request {route.request.url}"), route.abort())
        ),
    )

    # 1. Log in; the calendar opens on today, one column per operatory, htmx loaded.
    page.goto(f"{web_server}/calendar/")
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", "nexrel-demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{web_server}/calendar/")
    assert page.evaluate("typeof window.htmx") == "object"
    operatories = page.locator("#calendar-body section.cal-column").evaluate_all(
        "columns => columns.map(c => c.querySelector('h3').firstChild.textContent.trim())"
    )
    assert operatories == ["OP-1", "OP-2", "OP-3", "OP-4"]

    # 2. Book an imaging appointment for Zoé Côté at 16:00 in OP-1 (she is also booked at
    #    08:00 for bitewings: only the exact worklist link tells the two apart).
    page.click("#new-appointment")
    page.select_option("select[name=patient]", label="Côté, Zoé (1001)")
    page.fill("input[name=date]", today.isoformat())
    page.fill("input[name=time]", "16:00")
    page.fill("input[name=duration]", "30")
    page.select_option("select[name=operatory]", "OP-1")
    page.fill("input[name=procedure_code]", "D0274")
    page.check("input[name=needs_imaging]")
    page.click("#appointment-form button[type=submit]")
    page.wait_for_url(f"{web_server}/calendar/?view=day&date={today.isoformat()}")
    zoe = Patient.objects.get(practice__ae_title="NEXREL-CRM", chart_number="1001")
    tz = timezone.get_current_timezone()
    booked = Appointment.objects.get(
        patient=zoe, start=timezone.make_aware(dt.datetime.combine(today, dt.time(16)), tz)
    )
    morning = Appointment.objects.get(
        patient=zoe, start=timezone.make_aware(dt.datetime.combine(today, dt.time(8)), tz)
    )
    assert morning.needs_imaging
    item = WorklistItem.objects.get(appointment=booked)
    assert item.scheduled_station_ae_title == DEVICE and item.modality == "IO"
    assert chips(page, booked) == ["Scheduled"]

    # 3. Its detail shows the worklist item the device will get.
    page.click(f'#calendar-body [data-appointment="{booked.pk}"]')
    assert page.inner_text("td[data-field=accession_number]") == item.accession_number
    assert page.inner_text("td[data-field=study_instance_uid]") == item.study_instance_uid
    assert page.inner_text("td[data-field=scheduled_station_ae_title]") == DEVICE
    page.click("#back-to-calendar")
    page.wait_for_url(f"{web_server}/calendar/?view=day&date={today.isoformat()}")
    # From here on the page is never reloaded: a reload would drop this marker.
    page.evaluate("window.__sameDocument = true")
    first_render = page.get_attribute("#calendar-body", "data-refreshed")

    # 4. The device asks for its worklist and gets the appointment, accents intact.
    answers = find_worklist(port, today, tmp_path / "mwl")
    ours = [ds for ds in answers if ds.AccessionNumber == item.accession_number]
    assert len(ours) == 1, [ds.get("AccessionNumber") for ds in answers]
    assert ours[0].StudyInstanceUID == item.study_instance_uid
    assert str(ours[0].PatientName) == "Côté^Zoé" and ours[0].PatientID == "1001"
    step = ours[0].ScheduledProcedureStepSequence[0]
    assert step.ScheduledStationAETitle == DEVICE and step.Modality == "IO"
    expect(
        page.locator(f'#calendar-body [data-appointment="{booked.pk}"] .chip-fetched')
    ).to_have_text("Fetched by device", timeout=15_000)

    # 5. The device sends an image carrying the item's UID and accession number, taken at
    #    08:05 (name and time alone would point at the 08:00 appointment).
    xray = xray_for(item, tmp_path / "bitewing.dcm", study_time="080500")
    sent = subprocess.run(
        ["storescu", "-aet", DEVICE, "-aec", "NEXREL-CRM", "127.0.0.1", str(port), str(xray)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr + listener_proc.output()[-2000:]

    # 6. The open calendar shows it on that appointment, by itself.
    booked_block = page.locator(f'#calendar-body [data-appointment="{booked.pk}"]')
    try:
        expect(booked_block.locator(".chip-linked")).to_have_text("Linked (1)", timeout=40_000)
    except AssertionError:
        raise AssertionError(
            f"chips {chips(page, booked)}; worker log:\n{worker.output()[-3000:]}"
        ) from None
    # Only the current state: "Scheduled" is not kept beside "Linked".
    assert chips(page, booked) == ["Linked (1)"]
    assert page.evaluate("window.__sameDocument") is True
    assert page.get_attribute("#calendar-body", "data-refreshed") != first_render
    morning_chips = chips(page, morning)
    assert "Images received (1)" not in morning_chips and "Linked (1)" not in morning_chips

    # What the browser showed is what the database holds: exactly that appointment.
    study = DicomStudy.objects.get(study_instance_uid=item.study_instance_uid)
    assert study.status == DicomStudy.Status.PROCESSED
    assert (study.appointment_id, study.worklist_item_id) == (booked.pk, item.pk)
    assert study.patient == zoe
    assert not DicomStudy.objects.filter(appointment=morning).exists()

    # 7. Clicking the appointment opens it with the study's thumbnail.
    booked_block.click()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.thumb'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    assert_clean(page, problems)
