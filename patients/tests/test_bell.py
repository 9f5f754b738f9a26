"""The notifications' bell (issue 9 §5): the partial that htmx polls, marked read on click,
scoped to the practice, read or unread for each person; and the notices by email, only to
those who asked and may see them, once per person per unread spell."""

from __future__ import annotations

import re

from django.contrib.auth.models import Group
from django.urls import reverse
from pydicom.uid import generate_uid

from dicomnet.ingest.linking import notify_new_images
from dicomnet.models import DicomStudy
from patients import roles
from patients.mail import email_notification
from patients.models import Notification, NotificationRead, Patient, User
from patients.selectors import unread_notifications
from patients.services import mark_notification_read, mark_notifications_read_all
from tests.dicom_samples import ingest_dataset, intraoral

HTMX = {"HTTP_HX_REQUEST": "true"}


def _opt_in(user: User, email: str) -> User:
    user.email, user.email_notifications = email, True
    user.save(update_fields=["email", "email_notifications"])
    return user


def _study(practice, uid: str = "1.2.826.0.1.9.1") -> DicomStudy:
    return DicomStudy.objects.create(
        practice=practice, study_instance_uid=uid, patient_name="TREMBLAY^ZOE"
    )


def _recipients(outbox) -> list[str]:
    return sorted(address for message in outbox for address in message.to)


# --- email ------------------------------------------------------------------------------------


def test_email_is_off_by_default(practice):
    assert User.objects.filter(practice=practice, email_notifications=True).count() == 0
    assert User._meta.get_field("email_notifications").default is False


def test_email_goes_only_to_opted_in_people_of_the_practice_who_may_see_it(
    practice,
    clinician,
    frontdesk,
    practice_admin,
    other_practice,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    _opt_in(clinician, "clinician@example.ca")
    _opt_in(frontdesk, "desk@example.ca")
    _opt_in(practice_admin, "admin@example.ca")  # no patients.view_notification
    _opt_in(other_practice.user, "b@example.ca")  # another practice
    User.objects.create_user("quiet", practice=practice, email="quiet@example.ca").groups.add(
        Group.objects.get(name=roles.CLINICIAN)
    )  # not opted in
    gone = _opt_in(User.objects.create_user("gone", practice=practice), "gone@example.ca")
    gone.groups.add(Group.objects.get(name=roles.CLINICIAN))
    gone.is_active = False
    gone.save(update_fields=["is_active"])

    with django_capture_on_commit_callbacks(execute=True):
        notify_new_images(_study(practice))
    assert _recipients(mailoutbox) == ["clinician@example.ca", "desk@example.ca"]
    assert "TREMBLAY, ZOE" in mailoutbox[0].subject
    assert "/review/" in mailoutbox[0].body  # an unidentified patient: the review queue


def test_one_email_per_person_per_unread_spell(
    practice, clinician, frontdesk, mailoutbox, django_capture_on_commit_callbacks
):
    _opt_in(clinician, "clinician@example.ca")
    _opt_in(frontdesk, "desk@example.ca")
    study = _study(practice)
    with django_capture_on_commit_callbacks(execute=True):
        notice = notify_new_images(study)
    with django_capture_on_commit_callbacks(execute=True):
        notify_new_images(study)  # more images, still unread for both: no second email
    assert _recipients(mailoutbox) == ["clinician@example.ca", "desk@example.ca"]
    mark_notification_read(clinician, notice.pk)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        notify_new_images(study)  # unread again for the clinician; the desk was told already
    assert _recipients(mailoutbox) == ["clinician@example.ca"]


def test_email_waits_for_the_commit_and_skips_whoever_read_it_meanwhile(
    practice, clinician, frontdesk, mailoutbox, django_capture_on_commit_callbacks
):
    _opt_in(clinician, "clinician@example.ca")
    _opt_in(frontdesk, "desk@example.ca")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notice = notify_new_images(_study(practice))
    assert len(callbacks) == 1 and mailoutbox == []
    mark_notification_read(clinician, notice.pk)
    assert email_notification(notice.pk) == 1
    assert _recipients(mailoutbox) == ["desk@example.ca"]


def test_ingest_emails_the_opted_in_clinician(
    practice, clinician, mailoutbox, django_capture_on_commit_callbacks
):
    """Through the pipeline, where the notices are made (linking.notify_new_images)."""
    _opt_in(clinician, "clinician@example.ca")
    mark_notifications_read_all(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        ingest_dataset(practice, intraoral())
    assert _recipients(mailoutbox) == ["clinician@example.ca"]


# --- the bell ---------------------------------------------------------------------------------


def _notice(practice, n: int = 1) -> Notification:
    return Notification.objects.create(
        practice=practice,
        message=f"notice {n}",
        params={"dicom_name": f"Family{n}^G", "needs_review": False},
        count=3,
    )


def test_bell_partial_shows_the_count_and_polls(clinician_client, practice, settings):
    settings.LANGUAGE_CODE = "en"
    Notification.objects.filter(practice=practice).delete()
    _notice(practice, 1)
    _notice(practice, 2)
    response = clinician_client.get(reverse("notification_bell"), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<div id="bell"') and 'hx-trigger="every 20s"' in html
    assert 'id="bell-count">2<' in html and "3 new X-rays for Family2, G" in html
    assert "<html" not in html  # the partial, not the page
    page = clinician_client.get(reverse("patient_list")).content.decode()
    assert 'id="bell"' in page and 'id="bell-count">2<' in page


def test_the_practice_admins_bell_has_the_alerts_not_the_images(
    client_for, practice_admin, frontdesk, practice
):
    """The admin's bell is for the operations alerts (dicomnet/alerts.py); the images'
    notices, which name patients, stay with the clinic's people who deal with them."""
    image_notice = _notice(practice)
    alert = Notification.objects.create(
        practice=practice,
        for_admins=True,
        message="firing: no listener heartbeat for 60 s",
        params={"alert": "listener_down", "state": "firing", "values": {"seconds": 60}},
    )
    admin = client_for(practice_admin)
    bell = admin.get(reverse("notification_bell"))
    assert bell.status_code == 200
    assert [n.pk for n in bell.context["unread_notifications"]] == [alert.pk]
    desk = client_for(frontdesk).get(reverse("notification_bell"))
    assert [n.pk for n in desk.context["unread_notifications"]] == [image_notice.pk]


def test_clicking_a_notice_marks_it_read_and_follows_its_link(
    clinician_client, clinician, practice
):
    notice = _notice(practice)
    response = clinician_client.post(
        reverse("notification_read", args=[notice.pk]),
        {"open": "1", "next": "/review/"},
        **HTMX,
    )
    assert response.status_code == 204 and response["HX-Redirect"] == "/review/"
    assert NotificationRead.objects.filter(notification=notice, user=clinician).exists()

    other = _notice(practice, 2)
    response = clinician_client.post(
        reverse("notification_read", args=[other.pk]),
        {"open": "1", "next": "https://evil.example/"},
        **HTMX,
    )
    assert response["HX-Redirect"] == "/"


def test_dismissing_from_the_bell_redraws_it(clinician_client, practice):
    Notification.objects.filter(practice=practice).delete()
    first, second = _notice(practice, 1), _notice(practice, 2)
    response = clinician_client.post(reverse("notification_read", args=[second.pk]), **HTMX)
    html = response.content.decode()
    assert html.startswith('<div id="bell"') and 'id="bell-count">1<' in html
    assert f'data-notification="{first.pk}"' in html
    assert f'data-notification="{second.pk}"' not in html
    html = clinician_client.post(reverse("notifications_read"), **HTMX).content.decode()
    assert 'id="bell-count"' not in html and 'data-unread="0"' in html


def test_another_practice_cannot_mark_a_notice_read(client_for, other_practice, practice):
    mine = _notice(practice)
    client_for(other_practice.user).post(
        reverse("notification_read", args=[mine.pk]), {"open": "1", "next": "/"}, **HTMX
    )
    client_for(other_practice.user).post(reverse("notifications_read"), **HTMX)
    assert not NotificationRead.objects.filter(notification=mine).exists()


# --- read for me, not for the others of the practice ---------------------------------------


def _bell(client) -> dict[int, str]:
    """The notices of a person's bell: id -> text."""
    html = client.get(reverse("notification_bell"), **HTMX).content.decode()
    found = re.findall(r'data-notification="(\d+)">(?:<a [^>]*>)?([^<]*)', html)
    return {int(pk): text for pk, text in found}


def test_one_persons_click_leaves_the_notice_in_the_others_bells(
    client_for, clinician, frontdesk, practice
):
    Notification.objects.filter(practice=practice).delete()
    first, second = _notice(practice, 1), _notice(practice, 2)
    mine, theirs = client_for(clinician), client_for(frontdesk)
    mine.post(reverse("notification_read", args=[first.pk]), {"open": "1", "next": "/"}, **HTMX)
    assert set(_bell(mine)) == {second.pk}
    assert set(_bell(theirs)) == {first.pk, second.pk}

    mine.post(reverse("notifications_read"), **HTMX)  # "mark all as read": all of mine
    assert _bell(mine) == {}
    assert set(_bell(theirs)) == {first.pk, second.pk}
    assert [n.pk for n in unread_notifications(frontdesk).order_by("pk")] == [first.pk, second.pk]


def test_new_images_make_the_notice_unread_again_for_whoever_read_it(
    client_for, clinician, frontdesk, practice
):
    Notification.objects.filter(practice=practice).delete()
    xray = {"study_uid": generate_uid(), "patient_id": "1001", "patient_name": "COTE^ZOE"}
    notice = ingest_dataset(practice, intraoral(**xray)).study.notification
    mine, theirs = client_for(clinician), client_for(frontdesk)
    mine.post(reverse("notification_read", args=[notice.pk]), **HTMX)
    theirs.post(reverse("notification_read", args=[notice.pk]), **HTMX)
    assert _bell(mine) == {} and _bell(theirs) == {}

    ingest_dataset(practice, intraoral(**xray))  # a second X-ray of the same study
    assert Notification.objects.filter(practice=practice).count() == 1  # the same notice
    assert _bell(mine) == {notice.pk: "2 new X-rays for Zoé Côté"}
    assert _bell(theirs) == {notice.pk: "2 new X-rays for Zoé Côté"}
    assert not NotificationRead.objects.filter(notification=notice).exists()


def test_another_practices_person_never_sees_the_notice(client_for, other_practice, practice):
    mine = _notice(practice)
    theirs = client_for(other_practice.user)
    assert mine.pk not in _bell(theirs)
    assert mine.pk not in [n.pk for n in unread_notifications(other_practice.user)]
    theirs.post(reverse("notification_read", args=[mine.pk]), **HTMX)
    assert not NotificationRead.objects.filter(notification=mine).exists()


def test_opening_the_chart_reads_the_patients_notices_for_that_person_only(
    client_for, clinician, frontdesk, practice
):
    Notification.objects.filter(practice=practice).delete()
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    theirs_too = _notice(practice, 1)  # another patient's (an unidentified one)
    notice = Notification.objects.create(
        practice=practice, patient=cote, message="x", params={"dicom_name": "COTE^ZOE"}, count=1
    )
    mine = client_for(clinician)
    assert mine.get(reverse("patient_detail", args=[cote.pk])).status_code == 200
    assert set(_bell(mine)) == {theirs_too.pk}
    assert set(_bell(client_for(frontdesk))) == {theirs_too.pk, notice.pk}


def test_admin_shows_who_has_read_a_notice(admin_client, clinician, frontdesk, practice):
    Notification.objects.filter(practice=practice).delete()
    notice = _notice(practice)
    mark_notification_read(clinician, notice.pk)
    page = admin_client.get(reverse("admin:patients_notification_change", args=[notice.pk]))
    assert "clinician (" in page.content.decode() and "frontdesk (" not in page.content.decode()
    listed = admin_client.get(reverse("admin:patients_notification_changelist"))
    assert '<td class="field-readers">1</td>' in listed.content.decode()


# --- preferences ------------------------------------------------------------------------------


def test_preferences_turn_the_email_on_and_need_an_address(clinician_client, clinician):
    url = reverse("preferences")
    assert clinician_client.get(url).status_code == 200
    response = clinician_client.post(url, {"email": "", "email_notifications": "on"})
    assert response.status_code == 200 and "email" in response.context["form"].errors
    clinician.refresh_from_db()
    assert clinician.email_notifications is False
    response = clinician_client.post(url, {"email": "c@example.ca", "email_notifications": "on"})
    assert response.status_code == 302
    clinician.refresh_from_db()
    assert clinician.email_notifications is True and clinician.email == "c@example.ca"
    clinician_client.post(url, {"email": "c@example.ca"})
    clinician.refresh_from_db()
    assert clinician.email_notifications is False
