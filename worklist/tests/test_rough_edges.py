"""Issue 9's rough edges, each proved on the page or the function that showed it: ISO date
inputs in French, one image per SOP whatever its versions, a device other than the
scheduled station flagged, notices (count, latest few, dismiss, unidentified patient),
match reasons and model names in the reader's language, friendly error pages."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from pydicom.uid import generate_uid

from dicomnet.ingest.linking import notify_new_images
from dicomnet.ingest.pipeline import refresh_counts
from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Notification, User
from tests.dicom_samples import ingest_processed
from worklist.forms import MoveForm
from worklist.tests.test_calendar_views import DAY, add_study, block, book, chips, patient

ISO_VALUE = re.compile(r'<input type="date" name="(\w+)" value="(\d{4}-\d{2}-\d{2})"')


def date_inputs(html: str) -> dict[str, str]:
    return dict(ISO_VALUE.findall(html))


# --- date inputs: ISO whatever the language ---


def test_date_widgets_render_iso_in_french() -> None:
    with translation.override("fr"):
        html = str(MoveForm(initial={"date": DAY, "time": dt.time(9)}))
    assert date_inputs(html) == {"date": "2030-03-12"}
    assert "12/03/2030" not in html


def test_pages_fill_their_date_inputs_iso_in_french(clinician_client, practice, settings) -> None:
    settings.LANGUAGE_CODE = "fr-ca"
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    html = clinician_client.get(reverse("appointment_detail", args=[appointment.pk])).content
    assert date_inputs(html.decode()) == {"date": "2030-03-12"}

    find = clinician_client.get(reverse("qr_find", args=[appointment.patient.pk])).content
    born = appointment.patient.birth_date.isoformat()
    assert date_inputs(find.decode())["patient_birth_date"] == born

    today = timezone.localdate().isoformat()
    imported = clinician_client.get(reverse("worklist_import")).content.decode()
    assert date_inputs(imported) == {"date_from": today, "date_to": today}


def test_moving_in_french_keeps_the_date(clinician_client, practice, settings) -> None:
    settings.LANGUAGE_CODE = "fr-ca"
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    response = clinician_client.post(
        reverse("appointment_move", args=[appointment.pk]),
        {"date": "2030-03-14", "time": "10:30", "duration": 30, "operatory": "OP-1"},
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert timezone.localtime(appointment.start).date() == dt.date(2030, 3, 14)


# --- one SOP in several versions is one image ---


def _more_versions(instance: DicomInstance, count: int) -> None:
    for version in range(2, count + 2):
        DicomInstance.objects.create(
            practice=instance.practice,
            study=instance.study,
            series=instance.series,
            sop_instance_uid=instance.sop_instance_uid,
            sop_class_uid=instance.sop_class_uid,
            transfer_syntax_uid=f"1.2.840.10008.1.2.4.{version}",
            version=version,
            sha256=f"{version:064d}",
            state=DicomInstance.State.PROCESSED,
        )


def test_three_transfer_syntaxes_of_one_sop_are_one_image(clinician_client, practice) -> None:
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    study = add_study(
        appointment,
        status=DicomStudy.Status.PROCESSED,
        images=1,
        link=True,
        uid=appointment.worklist_item.study_instance_uid,
    )
    _more_versions(study.instances.get(), 2)
    assert study.instances.count() == 3

    assert DicomInstance.objects.filter(study=study).latest_versions().get().version == 3
    html = clinician_client.get(reverse("calendar"), {"date": DAY.isoformat()}).content.decode()
    assert chips(block(html, appointment)) == ["Linked (1)"]
    detail = clinician_client.get(reverse("appointment_detail", args=[appointment.pk]))
    assert detail.content.decode().count('class="thumb nopreview"') == 1
    chart = clinician_client.get(reverse("patient_detail", args=[appointment.patient.pk]))
    assert chart.content.decode().count('class="thumb-cell"') == 1

    refresh_counts(study)
    study.refresh_from_db()
    assert study.instance_count == 1
    assert notify_new_images(study).count == 1


# --- an image from a device other than the scheduled station ---


def _from_device(study: DicomStudy, ae: str) -> None:
    study.instances.update(calling_ae=ae)


def test_images_from_another_device_than_scheduled_are_flagged(
    clinician_client, practice, settings
) -> None:
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    item = appointment.worklist_item
    assert item.scheduled_station_ae_title
    study = add_study(
        appointment,
        status=DicomStudy.Status.PROCESSED,
        images=1,
        link=True,
        uid=item.study_instance_uid,
    )
    _from_device(study, item.scheduled_station_ae_title)
    assert DicomStudy.objects.get(pk=study.pk).station_mismatch is None

    _from_device(study, "OTHERDEVICE")
    study = DicomStudy.objects.get(pk=study.pk)
    expected = {"taken_on": "OTHERDEVICE", "scheduled_on": item.scheduled_station_ae_title}
    assert study.station_mismatch == expected

    notice = notify_new_images(study)
    with translation.override("en"):
        assert notice.text.endswith(
            f"Taken on device OTHERDEVICE, but scheduled on {item.scheduled_station_ae_title}."
        )
    html = clinician_client.get(reverse("appointment_detail", args=[appointment.pk])).content
    assert b'class="warning station-mismatch"' in html
    assert b"Taken on device OTHERDEVICE" in html
    chart = clinician_client.get(reverse("patient_detail", args=[appointment.patient.pk]))
    assert b'class="warning station-mismatch"' in chart.content
    settings.LANGUAGE_CODE = "fr-ca"
    french = clinician_client.get(reverse("appointment_detail", args=[appointment.pk]))
    assert "Prise sur l'appareil OTHERDEVICE" in french.content.decode()


def test_study_without_scheduled_station_is_not_flagged(practice) -> None:
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    appointment.worklist_item.scheduled_station_ae_title = ""
    appointment.worklist_item.save()
    study = add_study(appointment, status=DicomStudy.Status.PROCESSED, images=1, link=True)
    _from_device(study, "OTHERDEVICE")
    assert DicomStudy.objects.get(pk=study.pk).station_mismatch is None


# --- the notices: a count, the latest few, dismissed ---


def _notice(practice, n: int) -> Notification:
    return Notification.objects.create(
        practice=practice,
        message=f"notice {n}",
        params={"dicom_name": f"Family{n}^G", "needs_review": False},
        count=1,
    )


def notices(html: str) -> list[str]:
    return re.findall(r'<div class="notice" data-notification="(\d+)">', html)


def test_banner_shows_the_count_and_the_latest_three(clinician_client, practice) -> None:
    Notification.objects.filter(practice=practice).delete()
    made = [_notice(practice, n) for n in range(5)]
    html = clinician_client.get(reverse("patient_list")).content.decode()
    assert "5 new notifications" in html
    assert notices(html) == [str(n.pk) for n in reversed(made[2:])]
    assert "1 new X-ray for Family4, G" in html

    clinician_client.post(
        reverse("notification_read", args=[made[4].pk]), {"next": reverse("patient_list")}
    )
    html = clinician_client.get(reverse("patient_list")).content.decode()
    assert "4 new notifications" in html and str(made[4].pk) not in notices(html)

    response = clinician_client.post(reverse("notifications_read"), {"next": "https://evil/"})
    assert response["Location"] == "/"
    assert notices(clinician_client.get(reverse("patient_list")).content.decode()) == []


def test_another_practice_notice_cannot_be_dismissed(client_for, other_practice, practice):
    theirs = _notice(other_practice.practice, 1)
    mine = User.objects.get(username="clinician")
    client_for(mine).post(reverse("notification_read", args=[theirs.pk]))
    assert not theirs.reads.exists()


def test_unidentified_patient_is_said_so_and_linked_to_review(
    clinician_client, practice, settings
) -> None:
    Notification.objects.filter(practice=practice).delete()
    study = DicomStudy.objects.create(
        practice=practice,
        study_instance_uid=generate_uid(),
        status=DicomStudy.Status.NEEDS_REVIEW,
    )
    notice = notify_new_images(study)
    assert notice.message == "0 new X-rays for an unidentified patient (needs review)"
    settings.LANGUAGE_CODE = "fr-ca"
    html = clinician_client.get(reverse("patient_list")).content.decode()
    assert "0 nouvelle radiographie pour un patient non identifié (à vérifier)" in html
    assert "pour ?" not in html
    link = re.search(r'<div class="notice"[^>]*><a href="([^"]+)"', html).group(1)
    try:
        expected = reverse("review_queue")
    except Exception:
        expected = reverse("admin:dicomnet_dicomstudy_change", args=[study.pk])
    assert link == expected


# --- match reasons and model names in the reader's language ---


def test_match_reasons_follow_the_users_language(clinician_client, practice, settings) -> None:
    instance = ingest_processed(
        practice, patient_id="", patient_name="Côté^Zoé", birth_date="19000101"
    )
    study = instance.study
    study.refresh_from_db()
    assert study.status == DicomStudy.Status.NEEDS_REVIEW
    assert study.status_reason == "no patient with this name and date of birth"
    assert study.status_reason_params == {"code": "no_name_dob"}
    assert study.match_candidates[0]["why_code"] == "same_name_other_dob"
    with translation.override("fr"):
        assert study.reason_text == "aucun patient avec ce nom et cette date de naissance"
    settings.LANGUAGE_CODE = "fr-ca"
    home = clinician_client.get(reverse("home")).content.decode()
    assert "aucun patient avec ce nom et cette date de naissance" in home
    assert "Côté, Zoé" in home  # the DICOM name as people read it
    clinician_client.post(reverse("set_language"), {"language": "en", "next": "/"})
    home = clinician_client.get(reverse("home")).content.decode()
    assert "no patient with this name and date of birth" in home


def test_admin_model_names_are_translated(client, practice, settings) -> None:
    settings.LANGUAGE_CODE = "fr-ca"
    root = User.objects.create_superuser("root", password="root-password-1")
    client.force_login(root)
    html = client.get(reverse("admin:index")).content.decode()
    for name in ("Études DICOM", "Appareils DICOM", "Éléments de la liste de travail"):
        assert name in html, name
    assert "DICOM studies" not in html
    DicomStudy.objects.create(
        practice=practice, study_instance_uid=generate_uid(), patient_name="Lestrade^G"
    )
    studies = client.get(reverse("admin:dicomnet_dicomstudy_changelist")).content.decode()
    assert "Nom DICOM" in studies and "Lestrade, G" in studies


# --- error pages ---


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "We could not find this page"), ("fr", "Nous n'avons pas trouvé cette page")],
)
def test_missing_patient_gets_a_friendly_404(clinician_client, language, text) -> None:
    clinician_client.post(reverse("set_language"), {"language": language, "next": "/"})
    response = clinician_client.get(reverse("patient_detail", args=[999_999]))
    assert response.status_code == 404
    html = response.content.decode()
    assert text in html and 'id="error-404"' in html
    assert 'class="brand"' in html  # base.html: the header and its links are there


def test_403_and_500_pages_extend_base() -> None:
    from django.template.loader import render_to_string

    with translation.override("fr"):
        forbidden = render_to_string("403.html")
        broken = render_to_string("500.html")  # rendered with no request, as Django does
    assert "Vous n'avez pas accès à cette page" in forbidden
    assert "Une erreur est survenue de notre côté" in broken
    assert 'class="brand"' in broken


def test_exposure_flag_is_a_caption_under_its_thumbnail(clinician_client, practice, settings):
    """Not a tile of its own in the row of thumbnails: a caption in the image's cell."""
    appointment = book(practice, patient(practice, "1001"), "OP-1", 9)
    study = add_study(appointment, status=DicomStudy.Status.PROCESSED, images=2, link=True)
    first = study.instances.order_by("instance_number").first()
    first.analysis = {"exposure_check": {"verdict": "over_exposed"}}
    first.save()
    settings.LANGUAGE_CODE = "fr-ca"
    html = clinician_client.get(reverse("patient_detail", args=[appointment.patient.pk])).content
    cells = re.findall(
        r'<figure class="thumb-cell" data-instance="(\d+)">(.*?)</figure>', html.decode(), re.S
    )
    assert [pk for pk, _ in cells] == [str(i.pk) for i in study.instances.order_by("pk")]
    flagged = dict(cells)[str(first.pk)]
    assert '<figcaption class="flag exposure-flag" data-verdict="over_exposed">Surexposée' in (
        flagged
    )
    assert "exposure-flag" not in dict(cells)[str(study.instances.last().pk)]
    between = html.decode().split('<div class="thumbs">')[1].split("</div>\n</section>")[0]
    assert '<span class="flag">' not in between
