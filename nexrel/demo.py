"""Demo data: one practice, French-Canadian patients, a week of appointments, four devices,
and a second practice of its own; both with radiographs of a few patients (demo_images.py)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from dicomnet.models import DicomServer
from nexrel.demo_images import Exam, seed_images
from nexrel.radiographs import Mouth
from patients import roles
from patients.models import Appointment, Patient, Practice, User
from worklist.models import OperatoryStation, WorklistItem
from worklist.services import ensure_procedure_modalities

DEMO_PASSWORD = "nexrel-demo"

# The demo logins (all with DEMO_PASSWORD): username, first and last name, role, staff.
DEMO_USERS = [
    ("clinician", "Dre Marie", "Gauthier", roles.CLINICIAN, True),
    ("frontdesk", "Julie", "Morin", roles.FRONT_DESK, False),
    ("practiceadmin", "Sophie", "Lavoie", roles.PRACTICE_ADMIN, True),
]
SECOND_PRACTICE_AE = "PLATEAU"
SECOND_PRACTICE_PATIENTS = [
    ("2001", "Roy", "Mathieu", dt.date(1979, 6, 12), "M"),
    ("2002", "Fortin", "Amélie", dt.date(1990, 2, 28), "F"),
]

PATIENTS = [
    ("1001", "Côté", "Zoé", dt.date(1988, 3, 14), "F"),
    ("1002", "Bélanger", "Étienne", dt.date(1975, 11, 2), "M"),
    ("1003", "Lévesque", "Geneviève", dt.date(1992, 7, 21), "F"),
    ("1004", "Saint-Pierre", "François", dt.date(1969, 1, 30), "M"),
    ("1005", "Tremblay", "Chloé", dt.date(2001, 5, 9), "F"),
    ("1006", "Gagnon", "Noël", dt.date(1958, 12, 25), "M"),
    ("1007", "Bouchard", "Hélène", dt.date(1983, 9, 17), "F"),
    ("1008", "O'Connor-Pelletier", "Jérôme", dt.date(1996, 4, 3), "M"),
]

DEVICES = [
    ("Carestream CS 8100", "CARESTREAM", DicomServer.VendorProfile.CARESTREAM, "OP-1"),
    ("Planmeca ProMax", "PLANMECA", DicomServer.VendorProfile.PLANMECA, "OP-2"),
    ("Sirona Orthophos", "SIRONA", DicomServer.VendorProfile.SIRONA, "OP-3"),
    ("Vatech PaX-i", "VATECH", DicomServer.VendorProfile.VATECH, "OP-4"),
]

# The demo's radiographs: what each patient's mouth holds (the same in all their images),
# and when the images were taken, on days outside the week of appointments.
MOUTHS = {
    "1001": Mouth(restorations={"16": ("amalgam",), "26": ("composite",), "46": ("composite",)}),
    "2001": Mouth(
        missing=frozenset({"18", "28", "38", "48"}),
        restorations={"16": ("crown", "root canal"), "36": ("amalgam",), "47": ("amalgam",)},
    ),
}
IMAGES = [
    Exam("1001", "bitewings", dt.datetime(2026, 6, 9, 10, 15), device="CARESTREAM"),
    Exam("1001", "panoramic", dt.datetime(2024, 5, 14, 9, 30), device="PLANMECA"),
]
SECOND_PRACTICE_IMAGES = [
    Exam("2001", "bitewings", dt.datetime(2026, 4, 21, 9, 0)),
    Exam("2001", "panoramic", dt.datetime(2026, 4, 21, 9, 20)),
]

PROCEDURES = [
    ("D0274", "Bitewings - four radiographic images", True),
    ("D0220", "Intraoral - periapical first radiographic image", True),
    ("D0330", "Panoramic radiographic image", True),
    ("D0367", "Cone beam CT - both jaws", True),
    ("D1110", "Prophylaxis - adult", False),
    ("D0150", "Comprehensive oral evaluation", False),
]


@transaction.atomic
def seed_demo(*, today: dt.date | None = None, images: bool = True) -> Practice:
    """Idempotent: re-running updates the same rows and adds no duplicate. ``images`` False
    leaves out the radiographs (the tests' demo practice: each test adds its own)."""
    practice, _ = Practice.objects.update_or_create(
        ae_title=settings.DICOM_AE_TITLE, defaults={"name": "Clinique dentaire Laurier"}
    )
    groups = roles.sync_groups(Group, Permission)
    for username, first, last, role, staff in DEMO_USERS:
        _demo_user(username, practice, first, last, groups[role], staff=staff)
    for name, ae_title, profile, operatory in DEVICES:
        device, _ = DicomServer.objects.update_or_create(
            practice=practice,
            ae_title=ae_title,
            defaults=dict(
                name=name,
                host="127.0.0.1",
                port=104,
                is_active=True,
                check_host=False,
                allow_store=True,
                allow_find=True,
                allow_move=True,
                allow_get=True,
                vendor_profile=profile,
                # Demo quirks: one device reads only Latin-1, one never sends its station AE.
                mwl_character_set="ISO_IR 100" if ae_title == "SIRONA" else "ISO_IR 192",
                mwl_own_station_only=ae_title == "VATECH",
            ),
        )
        OperatoryStation.objects.update_or_create(
            practice=practice, operatory=operatory, defaults={"device": device}
        )
    ensure_procedure_modalities(practice)
    patients = []
    for chart, family, given, dob, sex in PATIENTS:
        patient, _ = Patient.objects.update_or_create(
            practice=practice,
            chart_number=chart,
            defaults=dict(family_name=family, given_name=given, birth_date=dob, sex=sex),
        )
        patients.append(patient)
    _seed_appointments(practice, patients, today or timezone.localdate())
    second = _seed_second_practice(groups[roles.CLINICIAN])
    if images:
        seed_images(practice, IMAGES, MOUTHS)
        seed_images(second, SECOND_PRACTICE_IMAGES, MOUTHS)
    return practice


def _demo_user(
    username: str, practice: Practice, first: str, last: str, group: Group, *, staff: bool
) -> User:
    """The demo login ``username`` (demo password), of ``practice`` and only ``group``."""
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"practice": practice, "first_name": first, "last_name": last, "is_staff": staff},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save()
    user.groups.set([group])
    return user


def _seed_second_practice(clinicians: Group) -> Practice:
    """A second practice, its clinician ``clinician2`` and its own patients: what the first
    practice's people must never see."""
    practice, _ = Practice.objects.update_or_create(
        ae_title=SECOND_PRACTICE_AE, defaults={"name": "Clinique dentaire du Plateau"}
    )
    _demo_user("clinician2", practice, "Dr Louis", "Roy", clinicians, staff=False)
    for chart, family, given, dob, sex in SECOND_PRACTICE_PATIENTS:
        Patient.objects.update_or_create(
            practice=practice,
            chart_number=chart,
            defaults=dict(family_name=family, given_name=given, birth_date=dob, sex=sex),
        )
    return practice


def _seed_appointments(practice: Practice, patients: list[Patient], today: dt.date) -> None:
    tz = timezone.get_current_timezone()
    window = (
        Appointment.objects.for_practice(practice)
        .filter(procedure_code__startswith="D")
        .filter(
            start__date__gte=today - dt.timedelta(days=3),
            start__date__lte=today + dt.timedelta(days=3),
        )
    )
    WorklistItem.objects.filter(appointment__in=window).delete()
    window.delete()
    for offset in range(-3, 4):
        day = today + dt.timedelta(days=offset)
        for slot, patient in enumerate(patients):
            if (slot + offset) % 3 and offset != 0:
                continue
            hour = 8 + slot
            operatory = DEVICES[slot % len(DEVICES)][3]
            code, description, imaging = PROCEDURES[(slot + offset) % len(PROCEDURES)]
            if offset == 0 and slot < 4:
                # Today: one imaging appointment in each device's operatory.
                code, description, imaging = PROCEDURES[slot % 4]
            start = timezone.make_aware(dt.datetime.combine(day, dt.time(hour, 0)), tz)
            Appointment.objects.create(
                practice=practice,
                patient=patient,
                start=start,
                end=start + dt.timedelta(minutes=45),
                operatory=operatory,
                procedure_code=code,
                procedure_description=description,
                needs_imaging=imaging,
                provider="Dre Marie Gauthier",
                status=Appointment.Status.CONFIRMED
                if offset >= 0
                else Appointment.Status.COMPLETED,
            )
