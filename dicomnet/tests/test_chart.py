"""The chart's timeline (dicomnet.chart), its appointments (patients.selectors), and the
prior/current comparison's choice of images (dicomnet.viewer.selectors) and page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from dicomnet.chart import chart_timeline
from dicomnet.dental.models import Mount
from dicomnet.models import DicomInstance, DicomServer
from dicomnet.viewer.selectors import CompareError, compared_instances
from patients.health_cards import format_ramq_number
from patients.models import AccessLog, Appointment, Patient
from patients.selectors import chart_appointments
from tests import dental_samples
from tests.dicom_samples import ingest_dataset, intraoral


def _image(patient: Patient, *, study_date: str, teeth: list[str], **elements):
    ds = intraoral(
        patient_id=patient.chart_number,
        patient_name=f"{patient.family_name}^{patient.given_name}",
        study_date=study_date,
        **elements,
    )
    ds.PrimaryAnatomicStructureSequence = [dental_samples.tooth_item(t) for t in teeth]
    return ds


@pytest.fixture
def cote(practice) -> Patient:
    return Patient.objects.get(practice=practice, chart_number="1001")


def test_timeline_is_newest_first_with_devices_teeth_in_chart_order(practice, cote):
    sensor = DicomServer.objects.create(practice=practice, name="Capteur 2", ae_title="SENSOR2")
    old = ingest_dataset(practice, _image(cote, study_date="20230301", teeth=["37", "36"]))
    new = ingest_dataset(practice, _image(cote, study_date="20260105", teeth=["21", "11"]))
    second = _image(cote, study_date="20260105", teeth=["12"], instance_number=2)
    second.StudyInstanceUID = new.study.study_instance_uid
    second.SeriesInstanceUID = new.series.series_instance_uid
    extra = ingest_dataset(practice, second)
    DicomInstance.objects.filter(pk=old.pk).update(calling_ae="OLDPANO")
    DicomInstance.objects.filter(pk__in=[new.pk, extra.pk]).update(server=sensor)

    timeline = chart_timeline(cote, "FDI")
    assert [e.study.pk for e in timeline] == [new.study_id, old.study_id]
    assert timeline[0].devices == ["Capteur 2"]
    assert timeline[1].devices == ["OLDPANO"]
    # Chart order: upper right (18…11), upper left (21…28), lower left… 12 before 11 before 21.
    assert timeline[0].teeth == ["12", "11", "21"]
    assert timeline[1].teeth == ["36", "37"]
    assert [i.teeth_labels for i in timeline[0].instances] == [["11", "21"], ["12"]]
    universal = chart_timeline(cote, "UNIVERSAL")
    assert universal[0].teeth == ["7", "8", "9"]


def test_timeline_gives_the_mount_fill(practice):
    patient = Patient.objects.create(
        practice=practice, chart_number="FMX-9", family_name="Plein", given_name="Aimé"
    )
    appointment = dental_samples.fmx_appointment(practice, patient)
    uid = appointment.worklist_item.study_instance_uid
    for ds in dental_samples.fmx_series(study_uid=uid, patient_id="FMX-9")[:7]:
        ingest_dataset(practice, ds)
    mount = Mount.objects.get(appointment=appointment)
    (entry,) = chart_timeline(patient, "FDI")
    assert entry.study.mount == mount
    assert (entry.mount_placed, entry.mount_total) == (7, mount.expected_images or 18)


def test_chart_appointments_split_upcoming_and_past(practice, cote):
    now = timezone.now()
    Appointment.objects.filter(patient=cote).delete()

    def book(days: int, status=Appointment.Status.BOOKED) -> Appointment:
        start = now + dt.timedelta(days=days)
        return Appointment.objects.create(
            practice=practice,
            patient=cote,
            start=start,
            end=start + dt.timedelta(minutes=30),
            status=status,
        )

    soon, later = book(2), book(30)
    book(5, Appointment.Status.CANCELLED)  # not coming: not listed as upcoming
    missed, last = book(-20, Appointment.Status.NO_SHOW), book(-3, Appointment.Status.COMPLETED)
    upcoming, past = chart_appointments(cote, now)
    assert upcoming == [soon, later]
    assert past == [last, missed]
    assert len(chart_appointments(cote, now, past_limit=1)[1]) == 1


def test_health_card_shown_as_printed_and_age():
    assert format_ramq_number("cotz88031412") == "COTZ 8803 1412"
    assert format_ramq_number("not a card") == "not a card"
    patient = Patient(birth_date=dt.date(2000, 2, 29))
    assert patient.age_on(dt.date(2026, 2, 28)) == 25
    assert patient.age_on(dt.date(2026, 3, 1)) == 26
    assert Patient().age_on(dt.date(2026, 1, 1)) is None


def test_compared_instances_two_of_this_practice(practice, cote, other_practice):
    a = ingest_dataset(practice, _image(cote, study_date="20240101", teeth=["36"]))
    b = ingest_dataset(practice, _image(cote, study_date="20260101", teeth=["36"]))
    theirs = ingest_dataset(other_practice.practice, intraoral(patient_id="1001"))
    assert compared_instances(practice, [str(b.pk), str(a.pk)]) == [b, a]
    for ids in ([str(a.pk)], [str(a.pk)] * 2, [str(a.pk), str(b.pk), "9"], [str(a.pk), "x"]):
        with pytest.raises(CompareError):
            compared_instances(practice, ids)
    with pytest.raises(CompareError):  # another practice's image is unknown here
        compared_instances(practice, [str(a.pk), str(theirs.pk)])


def test_compare_page(client_for, clinician, frontdesk, practice, cote):
    a = ingest_dataset(practice, _image(cote, study_date="20240101", teeth=["36"]))
    b = ingest_dataset(practice, _image(cote, study_date="20260101", teeth=["36"]))
    url = f"{reverse('viewer_compare')}?image={a.pk}&image={b.pk}"
    client = client_for(clinician)
    response = client.get(url)
    assert response.status_code == 200
    config = response.context["compare_config"]
    assert [s["sop"] for s in config["sides"]] == [a.sop_instance_uid, b.sop_instance_uid]
    assert config["sides"][0]["teeth"] == ["36"]
    refs = set(AccessLog.objects.filter(user=clinician).values_list("object_ref", flat=True))
    assert f"compare:{a.study.study_instance_uid}" in refs
    with override("en"):
        bad = client.get(f"{reverse('viewer_compare')}?image={a.pk}", HTTP_ACCEPT_LANGUAGE="en")
    assert bad.status_code == 400
    assert "Choose two different images to compare." in bad.content.decode()
    assert client_for(frontdesk).get(url).status_code == 403
