"""The front desk's calendar: day and week views, imaging chips derived from real rows,
create/move/cancel through the views (the worklist follows), practice scoping, and the
partial the page polls."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from pydicom.uid import generate_uid

from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Appointment, Patient, Practice
from tests.dicom_samples import ingest_processed
from worklist.models import PerformedProcedureStep, WorklistItem
from worklist.selectors import imaging_status, imaging_statuses

DAY = dt.date(2030, 3, 12)  # a Tuesday, away from the demo's appointments


@pytest.fixture
def their_appointment(other_practice) -> Appointment:
    """Practice B's imaging appointment for its patient, on DAY at 9:00 in OP-1."""
    return book(other_practice.practice, other_practice.patient, "OP-1", 9, 0)


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def book(
    practice: Practice,
    patient: Patient,
    operatory: str,
    hour: int,
    minute: int = 0,
    *,
    code: str = "D0274",
    imaging: bool = True,
    minutes: int = 30,
) -> Appointment:
    return Appointment.objects.create(
        practice=practice,
        patient=patient,
        start=at(hour, minute),
        end=at(hour, minute) + dt.timedelta(minutes=minutes),
        operatory=operatory,
        procedure_code=code,
        procedure_description=f"procedure {code}",
        needs_imaging=imaging,
    )


def patient(practice: Practice, chart: str) -> Patient:
    return Patient.objects.get(practice=practice, chart_number=chart)


def add_study(
    appointment_or_item,
    *,
    status: str,
    images: int,
    link: bool = False,
    uid: str | None = None,
    accession: str = "",
) -> DicomStudy:
    """A study row with ``images`` instance rows, as the pipeline leaves them."""
    item = getattr(appointment_or_item, "worklist_item", None)
    appointment = appointment_or_item
    study = DicomStudy.objects.create(
        practice=appointment.practice,
        study_instance_uid=uid or generate_uid(),
        accession_number=accession,
        patient_id=appointment.patient.chart_number,
        patient=appointment.patient if link else None,
        appointment=appointment if link else None,
        worklist_item=item if link else None,
        status=status,
        instance_count=images,
    )
    for n in range(images):
        DicomInstance.objects.create(
            practice=appointment.practice,
            study=study,
            sop_instance_uid=generate_uid(),
            sop_class_uid="1.2.840.10008.5.1.4.1.1.1.3",
            instance_number=n + 1,
            sha256=f"{n:064d}",
            state=DicomInstance.State.PROCESSED,
        )
    return study


# --- HTML helpers: the pages are server-rendered, so the tests read their markup. ---


def columns(html: str) -> dict[str, str]:
    """Day view: operatory -> its column's markup."""
    found = re.findall(
        r'<section class="cal-column" data-operatory="([^"]*)">(.*?)</section>', html, re.S
    )
    return dict(found)


def day_columns(html: str) -> dict[str, str]:
    """Week view: ISO date -> its column's markup."""
    found = re.findall(
        r'<section class="cal-column[^"]*" data-day="([^"]*)">(.*?)</section>', html, re.S
    )
    return dict(found)


def block(html: str, appointment: Appointment) -> str:
    match = re.search(rf'<a class="appt[^"]*"[^>]*data-appointment="{appointment.pk}"', html)
    assert match, f"appointment {appointment.pk} is not on the page"
    return html[match.start() : html.index("</a>", match.end())]


def chips(html: str) -> list[str]:
    return re.findall(r'<span class="chip chip-\w+" data-step="\w+">([^<]*)</span>', html)


def page(client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def calendar(client, **params) -> str:
    return page(client, reverse("calendar"), date=DAY.isoformat(), **params)


# --- Views ---


def test_calendar_needs_a_login(client, practice):
    for name in ("calendar", "calendar_body", "appointment_new"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_day_view_has_one_column_per_operatory_with_appointments_placed_by_time(
    clinician_client, practice
):
    zoe = book(practice, patient(practice, "1001"), "OP-2", 9, 30, minutes=45)
    etienne = book(practice, patient(practice, "1002"), "OP-4", 13, imaging=False)
    late = book(practice, patient(practice, "1003"), "OP-1", 19, 30)

    html = calendar(clinician_client)

    cols = columns(html)
    assert list(cols) == ["OP-1", "OP-2", "OP-3", "OP-4"]
    assert f'data-appointment="{zoe.pk}"' in cols["OP-2"]
    assert f'data-appointment="{etienne.pk}"' in cols["OP-4"]
    assert f'data-appointment="{late.pk}"' in cols["OP-1"]
    assert "data-appointment" not in cols["OP-3"]
    # 1.5 px per minute from 07:00: 09:30 is 150 minutes down, 45 minutes tall.
    assert 'style="top: 225.0px; height: 67.5px"' in block(html, zoe)
    assert "Zoé Côté" in block(html, zoe) and "09:30–10:15" in block(html, zoe)
    # The grid grows past 19:00 to show the 19:30 appointment.
    assert ">19:00</div>" in html and ">20:00</div>" not in html
    assert chips(block(html, etienne)) == []
    assert "Tuesday 12 March 2030" in html


def test_day_view_leaves_out_other_days_and_cancelled_appointments(clinician_client, practice):
    kept = book(practice, patient(practice, "1001"), "OP-1", 9)
    cancelled = book(practice, patient(practice, "1002"), "OP-2", 9)
    cancelled.status = Appointment.Status.CANCELLED
    cancelled.save()
    tomorrow = Appointment.objects.create(
        practice=practice,
        patient=patient(practice, "1003"),
        start=at(9, day=DAY + dt.timedelta(days=1)),
        end=at(10, day=DAY + dt.timedelta(days=1)),
        operatory="OP-3",
    )

    html = calendar(clinician_client)

    assert f'data-appointment="{kept.pk}"' in html
    assert f'data-appointment="{cancelled.pk}"' not in html
    assert f'data-appointment="{tomorrow.pk}"' not in html


def test_week_view_has_seven_days_and_filters_by_operatory(clinician_client, practice):
    monday = book(practice, patient(practice, "1001"), "OP-1", 9)
    monday.start -= dt.timedelta(days=1)
    monday.end -= dt.timedelta(days=1)
    monday.save()
    sunday_op2 = Appointment.objects.create(
        practice=practice,
        patient=patient(practice, "1002"),
        start=at(10, day=DAY + dt.timedelta(days=5)),
        end=at(11, day=DAY + dt.timedelta(days=5)),
        operatory="OP-2",
    )

    html = calendar(clinician_client, view="week")
    days = day_columns(html)
    monday_of_week = dt.date(2030, 3, 11)
    assert list(days) == [(monday_of_week + dt.timedelta(days=n)).isoformat() for n in range(7)]
    assert f'data-appointment="{monday.pk}"' in days["2030-03-11"]
    assert f'data-appointment="{sunday_op2.pk}"' in days["2030-03-17"]
    assert "OP-1" in block(html, monday)  # the week view names the operatory

    filtered = calendar(clinician_client, view="week", operatory="OP-2")
    assert f'data-appointment="{sunday_op2.pk}"' in filtered
    assert f'data-appointment="{monday.pk}"' not in filtered
    assert '<option value="OP-2" selected>' in filtered


def test_navigation_links_step_a_day_or_a_week(clinician_client, practice):
    day = calendar(clinician_client)
    assert 'id="cal-prev" href="?view=day&amp;date=2030-03-11"' in day
    assert 'id="cal-next" href="?view=day&amp;date=2030-03-13"' in day
    today = timezone.localdate().isoformat()
    assert f'id="cal-today" href="?view=day&amp;date={today}"' in day

    week = calendar(clinician_client, view="week", operatory="OP-3")
    assert 'id="cal-prev" href="?view=week&amp;date=2030-03-05&amp;operatory=OP-3"' in week
    assert 'id="cal-next" href="?view=week&amp;date=2030-03-19&amp;operatory=OP-3"' in week


def test_bad_calendar_query_is_400_with_a_message(clinician_client, practice):
    response = clinician_client.get(reverse("calendar"), {"date": "2030-13-45"})
    assert response.status_code == 400
    assert "Bad date “2030-13-45”: use YYYY-MM-DD." in response.content.decode()
    response = clinician_client.get(reverse("calendar_body"), {"view": "month"})
    assert response.status_code == 400
    assert "Unknown view “month”: use day or week." in response.content.decode()


# --- Chips, from real rows ---


def test_chips_follow_each_step_of_an_imaging_appointment(clinician_client, practice):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    item = appointment.worklist_item

    def shown() -> list[str]:
        return chips(block(calendar(clinician_client), appointment))

    assert shown() == ["Scheduled"]

    # The device's worklist query returned the item.
    item.first_fetched_at = timezone.now()
    item.fetched_by = "CARESTREAM"
    item.save()
    assert shown() == ["Fetched by device"]  # only the current state, not the trail

    # MPPS N-CREATE: the device started the procedure.
    PerformedProcedureStep.objects.create(
        practice=practice,
        sop_instance_uid=generate_uid(),
        worklist_item=item,
        calling_ae="CARESTREAM",
        status=PerformedProcedureStep.Status.IN_PROGRESS,
    )
    item.status = WorklistItem.Status.IN_PROGRESS
    item.save()
    assert shown() == ["In progress"]

    # Images arrived carrying the item's StudyInstanceUID; not linked yet.
    study = add_study(
        appointment, status=DicomStudy.Status.PENDING, images=2, uid=item.study_instance_uid
    )
    assert shown() == ["Images received (2)"]

    # The pipeline linked them: the count stays visible.
    study.patient, study.appointment, study.worklist_item = appointment.patient, appointment, item
    study.status = DicomStudy.Status.PROCESSED
    study.save()
    assert shown() == ["Linked (2)"]


def test_study_matching_the_accession_number_but_needing_review(clinician_client, practice):
    appointment = book(practice, patient(practice, "1002"), "OP-2", 10)
    add_study(
        appointment,
        status=DicomStudy.Status.NEEDS_REVIEW,
        images=1,
        accession=appointment.worklist_item.accession_number,
    )
    assert chips(block(calendar(clinician_client), appointment)) == ["Needs review (1)"]


def test_study_linked_by_appointment_only_counts_without_a_worklist_match(
    clinician_client, practice
):
    """Name-matched images (a device that ignores the worklist) still show on the chip."""
    appointment = book(practice, patient(practice, "1003"), "OP-3", 11)
    add_study(appointment, status=DicomStudy.Status.PROCESSED, images=3, link=True)
    add_study(appointment, status=DicomStudy.Status.PROCESSED, images=1, link=True)
    status = imaging_status(appointment)
    assert status.keys == ["scheduled", "received", "linked"]
    assert status.image_count == 4 and len(status.studies) == 2


def test_completed_and_discontinued_items(clinician_client, practice):
    done = book(practice, patient(practice, "1001"), "OP-1", 9)
    done.worklist_item.status = WorklistItem.Status.COMPLETED
    done.worklist_item.save()
    dropped = book(practice, patient(practice, "1002"), "OP-2", 9)
    dropped.needs_imaging = False
    dropped.save()  # the worklist discontinues the item

    html = calendar(clinician_client)
    assert chips(block(html, done)) == ["Performed"]
    assert chips(block(html, dropped)) == ["Discontinued"]


def test_other_studies_do_not_count(clinician_client, practice, their_appointment):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    item = appointment.worklist_item
    # Another practice's study with the very same UID and accession number.
    theirs = their_appointment
    add_study(theirs, status=DicomStudy.Status.PROCESSED, images=2, uid=item.study_instance_uid)
    DicomStudy.objects.filter(practice=theirs.practice).update(
        accession_number=item.accession_number
    )
    # A study of the same patient, linked to another appointment of hers.
    other_day = book(practice, patient(practice, "1001"), "OP-2", 15)
    add_study(other_day, status=DicomStudy.Status.PROCESSED, images=1, link=True)

    assert chips(block(calendar(clinician_client), appointment)) == ["Scheduled"]
    assert chips(block(calendar(clinician_client), other_day)) == ["Linked (1)"]


def test_statuses_are_read_in_the_same_few_queries_for_any_number_of_appointments(
    practice, django_assert_num_queries
):
    appointments = [
        book(practice, patient(practice, f"100{n}"), f"OP-{n}", 8 + n) for n in range(1, 5)
    ]
    for appointment in appointments:
        add_study(appointment, status=DicomStudy.Status.PROCESSED, images=2, link=True)
    with django_assert_num_queries(4):
        one = imaging_statuses(appointments[:1])
    with django_assert_num_queries(4):
        four = imaging_statuses(appointments)
    assert one[appointments[0].pk].image_count == 2
    assert [four[a.pk].image_count for a in appointments] == [2, 2, 2, 2]


def test_an_image_through_the_real_pipeline_shows_received_and_linked(clinician_client, practice):
    appointment = book(practice, patient(practice, "1004"), "OP-4", 14)
    item = appointment.worklist_item
    ingest_processed(
        practice,
        patient_id="1004",
        patient_name="SAINT-PIERRE^FRANCOIS",
        birth_date="19690130",
        study_uid=item.study_instance_uid,
        study_date=DAY.strftime("%Y%m%d"),
    )
    assert chips(block(calendar(clinician_client), appointment)) == ["Linked (1)"]


# --- Appointment detail ---


def test_detail_shows_the_worklist_item_and_thumbnails(clinician_client, practice):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    item = appointment.worklist_item
    instance = ingest_processed(
        practice,
        patient_id="1001",
        patient_name="COTE^ZOE",
        birth_date="19880314",
        study_uid=item.study_instance_uid,
        study_date=DAY.strftime("%Y%m%d"),
    )
    html = page(clinician_client, reverse("appointment_detail", args=[appointment.pk]))
    assert f'<td data-field="accession_number">{item.accession_number}</td>' in html
    assert f'<td data-field="study_instance_uid">{item.study_instance_uid}</td>' in html
    assert '<td data-field="scheduled_station_ae_title">CARESTREAM</td>' in html
    assert '<td data-field="modality">IO</td>' in html
    assert '<td data-field="status">Scheduled</td>' in html
    thumb = reverse("instance_image", args=[instance.pk, "thumbnail"])
    assert f'<img class="thumb" src="{thumb}"' in html
    assert clinician_client.get(thumb).status_code == 200
    # And the calendar links to it.
    assert f'href="{reverse("appointment_detail", args=[appointment.pk])}"' in calendar(
        clinician_client
    )


# --- Create, move, cancel: the worklist follows ---


def form(pat: Patient, **changes) -> dict:
    return {
        "patient": pat.pk,
        "date": DAY.isoformat(),
        "time": "09:00",
        "duration": "30",
        "operatory": "OP-2",
        "procedure_code": "d0274",
        "procedure_description": "",
        "needs_imaging": "on",
        "provider": "Dre Marie Gauthier",
        **changes,
    }


def test_create_an_imaging_appointment_schedules_its_worklist_item(clinician_client, practice):
    zoe = patient(practice, "1001")
    assert (
        clinician_client.get(reverse("appointment_new"), {"operatory": "OP-2"}).status_code == 200
    )

    response = clinician_client.post(reverse("appointment_new"), form(zoe))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('calendar')}?view=day&date={DAY.isoformat()}"
    appointment = Appointment.objects.get(practice=practice, patient=zoe, start=at(9))
    assert appointment.end == at(9, 30) and appointment.operatory == "OP-2"
    assert appointment.procedure_code == "D0274"
    assert appointment.procedure_description == "Bitewings - four images"  # from the mapping
    item = WorklistItem.objects.get(appointment=appointment)
    assert item.status == WorklistItem.Status.SCHEDULED
    assert item.scheduled_start == at(9)
    assert item.scheduled_station_ae_title == "PLANMECA"  # OP-2's device
    assert item.modality == "IO"
    assert item.patient_name == "Côté^Zoé" and item.patient_id == "1001"
    assert chips(block(calendar(clinician_client), appointment)) == ["Scheduled"]


def test_create_refuses_bad_input_with_a_message(clinician_client, practice, other_practice):
    zoe = patient(practice, "1001")
    booked = book(practice, patient(practice, "1002"), "OP-2", 9, 15)
    before = Appointment.objects.count()

    taken = clinician_client.post(reverse("appointment_new"), form(zoe))
    assert taken.status_code == 400
    message = "OP-2 is already booked from 09:15 to 09:45 (Étienne Bélanger)."
    assert message in taken.content.decode()

    theirs = other_practice.patient
    foreign = clinician_client.post(reverse("appointment_new"), form(theirs, time="11:00"))
    assert foreign.status_code == 400
    assert b"Select a valid choice" in foreign.content

    nonsense = clinician_client.post(
        reverse("appointment_new"), form(zoe, time="25:99", duration="0", operatory="OP-3")
    )
    assert nonsense.status_code == 400
    assert b"Enter a valid time." in nonsense.content
    assert b"Ensure this value is greater than or equal to 5." in nonsense.content

    assert Appointment.objects.count() == before
    assert not WorklistItem.objects.filter(appointment__patient=zoe, scheduled_start=at(9))
    assert booked.worklist_item.status == WorklistItem.Status.SCHEDULED


def test_move_an_appointment_moves_its_worklist_item(clinician_client, practice):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9, minutes=45)
    assert appointment.worklist_item.scheduled_station_ae_title == "CARESTREAM"
    move = reverse("appointment_move", args=[appointment.pk])

    response = clinician_client.post(
        move, {"date": "2030-03-14", "time": "15:30", "duration": "45", "operatory": "OP-3"}
    )

    assert response.status_code == 302
    assert response["Location"].endswith("date=2030-03-14")
    appointment.refresh_from_db()
    new_start = at(15, 30, day=dt.date(2030, 3, 14))
    assert (appointment.start, appointment.end) == (new_start, new_start + dt.timedelta(minutes=45))
    assert appointment.operatory == "OP-3"
    item = WorklistItem.objects.get(appointment=appointment)
    assert item.scheduled_start == new_start
    assert item.scheduled_station_ae_title == "SIRONA"
    assert item.status == WorklistItem.Status.SCHEDULED


def test_move_refuses_a_taken_slot_and_bad_input(clinician_client, practice):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    book(practice, patient(practice, "1002"), "OP-3", 14)
    move = reverse("appointment_move", args=[appointment.pk])

    taken = clinician_client.post(
        move, {"date": DAY.isoformat(), "time": "14:15", "duration": "30", "operatory": "OP-3"}
    )
    assert taken.status_code == 400
    message = "OP-3 is already booked from 14:00 to 14:30 (Étienne Bélanger)."
    assert message in taken.content.decode()

    garbage = clinician_client.post(move, {"date": "someday", "time": "14:15", "duration": "30"})
    assert garbage.status_code == 400
    assert b"Enter a valid date." in garbage.content

    appointment.refresh_from_db()
    assert appointment.start == at(9) and appointment.operatory == "OP-1"
    assert WorklistItem.objects.get(appointment=appointment).scheduled_start == at(9)


def test_cancel_discontinues_the_worklist_item(clinician_client, practice):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)

    response = clinician_client.post(reverse("appointment_cancel", args=[appointment.pk]))

    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED
    assert WorklistItem.objects.get(appointment=appointment).status == (
        WorklistItem.Status.DISCONTINUED
    )
    assert f'data-appointment="{appointment.pk}"' not in calendar(clinician_client)
    # A cancelled appointment can't be moved back into the schedule by mistake.
    moved = clinician_client.post(
        reverse("appointment_move", args=[appointment.pk]),
        {"date": DAY.isoformat(), "time": "10:00", "duration": "30", "operatory": "OP-1"},
    )
    assert moved.status_code == 400
    assert b"A cancelled appointment cannot be moved." in moved.content


def test_a_completed_appointment_cannot_be_cancelled(clinician_client, practice):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    appointment.status = Appointment.Status.COMPLETED
    appointment.save()

    response = clinician_client.post(reverse("appointment_cancel", args=[appointment.pk]))

    assert response.status_code == 400
    assert b"A completed appointment cannot be cancelled." in response.content
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.COMPLETED
    assert appointment.worklist_item.status == WorklistItem.Status.COMPLETED


def test_writes_need_post(clinician_client, practice):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    assert (
        clinician_client.get(reverse("appointment_cancel", args=[appointment.pk])).status_code
        == 405
    )
    assert (
        clinician_client.get(reverse("appointment_move", args=[appointment.pk])).status_code == 405
    )
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.BOOKED


# --- Practice scoping ---


def test_another_practice_appointment_is_404_and_not_listed(
    clinician_client, practice, their_appointment
):
    theirs = their_appointment
    item = theirs.worklist_item
    assert item is not None
    for name in ("appointment_detail",):
        assert clinician_client.get(reverse(name, args=[theirs.pk])).status_code == 404
    for name in ("appointment_move", "appointment_cancel"):
        response = clinician_client.post(
            reverse(name, args=[theirs.pk]),
            {"date": DAY.isoformat(), "time": "15:00", "duration": "30"},
        )
        assert response.status_code == 404
    theirs.refresh_from_db()
    item.refresh_from_db()
    assert theirs.status == Appointment.Status.BOOKED and theirs.start == at(9)
    assert item.status == WorklistItem.Status.SCHEDULED
    html = calendar(clinician_client)
    assert f'data-appointment="{theirs.pk}"' not in html and "Patiente Autre" not in html


def test_a_user_of_the_other_practice_sees_only_theirs(
    client_for, practice, other_practice, their_appointment
):
    mine = book(practice, patient(practice, "1001"), "OP-1", 10)
    theirs = their_appointment
    client = client_for(other_practice.user)
    html = calendar(client)
    assert f'data-appointment="{theirs.pk}"' in html
    assert f'data-appointment="{mine.pk}"' not in html
    assert client.get(reverse("appointment_detail", args=[mine.pk])).status_code == 404


def test_a_user_without_a_practice_is_refused(admin_client, practice):
    assert admin_client.get(reverse("calendar")).status_code == 403


# --- The page refreshes itself ---


def test_the_page_polls_its_body_which_shows_new_images(clinician_client, practice):
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    full = calendar(clinician_client)
    assert '<script src="/static/vendor/htmx.min.js" defer></script>' in full
    body_url = f"{reverse('calendar_body')}?view=day&amp;date={DAY.isoformat()}"
    assert f'id="calendar-body" class="cal-body cal-day" hx-get="{body_url}"' in full
    assert 'hx-trigger="every 3s" hx-swap="outerHTML"' in full

    before = page(clinician_client, reverse("calendar_body"), date=DAY.isoformat())
    assert before.startswith('<div id="calendar-body"') and "<html" not in before
    assert f'hx-get="{body_url}"' in before  # the swapped-in body keeps polling
    assert chips(block(before, appointment)) == ["Scheduled"]

    add_study(
        appointment,
        status=DicomStudy.Status.PENDING,
        images=1,
        uid=appointment.worklist_item.study_instance_uid,
    )
    after = page(clinician_client, reverse("calendar_body"), date=DAY.isoformat())
    assert chips(block(after, appointment)) == ["Images received (1)"]


def test_week_body_keeps_its_filter_when_polled(clinician_client, practice):
    html = calendar(clinician_client, view="week", operatory="OP-2")
    url = f"{reverse('calendar_body')}?view=week&amp;date={DAY.isoformat()}&amp;operatory=OP-2"
    assert f'hx-get="{url}"' in html


# --- French ---


def test_the_calendar_speaks_french_by_default(clinician_client, practice, settings):
    settings.LANGUAGE_CODE = "fr-ca"
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    add_study(appointment, status=DicomStudy.Status.PROCESSED, images=2, link=True)
    html = calendar(clinician_client)
    assert "Nouveau rendez-vous" in html
    assert chips(block(html, appointment)) == ["Liées (2)"]
    assert "mardi 12 mars 2030" in html
