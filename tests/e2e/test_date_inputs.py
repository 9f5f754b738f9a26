"""In Chromium, in French: the date inputs of moving an appointment, "find prior studies" and
the worklist import show their dates (ISO, the only value Chromium's <input type=date>
takes) and keep them when submitted. Without a browser: worklist/tests/test_rough_edges.py."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import pytest
from django.utils import timezone

from dicomnet.models import DicomServer
from patients.models import Appointment, Patient

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed"),
]

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def value(page, name: str) -> str:
    found = page.input_value(f"input[type=date][name={name}]")
    assert ISO.match(found), f"{name}: {found!r} is not an ISO date"
    return found


def test_date_inputs_keep_their_dates_in_french(web_server, browser_page, practice):
    page, problems = browser_page
    patient = Patient.objects.get(practice=practice, chart_number="1002")
    day = timezone.localdate() + dt.timedelta(days=20)
    start = timezone.make_aware(dt.datetime.combine(day, dt.time(9)))
    appointment = Appointment.objects.create(
        practice=practice,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=30),
        operatory="OP-1",
        procedure_code="D0274",
        needs_imaging=True,
    )
    page.goto(f"{web_server}/accounts/login/?next=/patients/")
    page.fill("input[name=username]", "clinician")
    page.fill("input[name=password]", "nexrel-demo")
    page.click("button[type=submit]")
    if page.get_attribute("html", "lang") != "fr":
        page.click("form.lang button")
    assert page.get_attribute("html", "lang") == "fr"

    # 1. Moving an appointment: the date is there, and kept once moved to another time.
    page.goto(f"{web_server}/calendar/appointments/{appointment.pk}/")
    assert value(page, "date") == day.isoformat()
    page.fill("#move-form input[name=time]", "10:30")
    page.click("#move-form button[type=submit]")
    page.wait_for_load_state()
    appointment.refresh_from_db()
    moved = timezone.localtime(appointment.start)
    assert (moved.date(), moved.time()) == (day, dt.time(10, 30))
    page.goto(f"{web_server}/calendar/appointments/{appointment.pk}/")
    assert value(page, "date") == day.isoformat()

    # Nothing answers on port 1: the queries below fail at once, with the form shown again.
    DicomServer.objects.filter(practice=practice).update(allow_find=True, port=1)

    # 2. Find prior studies: the chart's birth date, kept when the search is sent.
    page.goto(f"{web_server}/dicom/find/{patient.pk}/")
    assert value(page, "patient_birth_date") == patient.birth_date.isoformat()
    page.fill("input[name=date_from]", "2018-01-01")
    assert value(page, "date_from") == "2018-01-01"
    page.click("#qr-query button[type=submit]")  # the demo device does not answer: an error
    page.wait_for_load_state()
    assert value(page, "patient_birth_date") == patient.birth_date.isoformat()
    assert value(page, "date_from") == "2018-01-01"
    assert "patient_birth_date=" + patient.birth_date.isoformat() in page.url

    # 3. Worklist import: today by default, and the chosen range kept when sent.
    page.goto(f"{web_server}/worklist/import/")
    today = timezone.localdate().isoformat()
    assert (value(page, "date_from"), value(page, "date_to")) == (today, today)
    page.fill("input[name=date_to]", (timezone.localdate() + dt.timedelta(days=2)).isoformat())
    page.click("#worklist-query button[type=submit]")
    page.wait_for_load_state()
    assert value(page, "date_from") == today
    assert value(page, "date_to") == (timezone.localdate() + dt.timedelta(days=2)).isoformat()
    # The refused queries answer with an error status; nothing else went wrong.
    assert page.evaluate("window.__cspViolations") == []
    assert [p for p in problems if not p.startswith(("HTTP ", "console error: Failed"))] == []
