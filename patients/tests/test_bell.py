"""The notifications' bell (issue 9 §5): the partial that htmx polls, marked read on click,
scoped to the practice; and the notices by email, only to those who asked and may see them."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.urls import reverse

from dicomnet.ingest.linking import notify_new_images
from dicomnet.models import DicomStudy
from patients import roles
from patients.mail import email_notification
from patients.models import Notification, User
from patients.services import mark_notification_read
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


def test_one_email_per_unread_spell(
    practice, clinician, mailoutbox, django_capture_on_commit_callbacks
):
    _opt_in(clinician, "clinician@example.ca")
    study = _study(practice)
    with django_capture_on_commit_callbacks(execute=True):
        notice = notify_new_images(study)
    with django_capture_on_commit_callbacks(execute=True):
        notify_new_images(study)  # more images, still unread: no second email
    assert len(mailoutbox) == 1
    mark_notification_read(practice, notice.pk)
    with django_capture_on_commit_callbacks(execute=True):
        notify_new_images(study)  # unread again
    assert len(mailoutbox) == 2


def test_email_waits_for_the_commit_and_skips_a_notice_read_meanwhile(
    practice, clinician, mailoutbox, django_capture_on_commit_callbacks
):
    _opt_in(clinician, "clinician@example.ca")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notice = notify_new_images(_study(practice))
    assert len(callbacks) == 1 and mailoutbox == []
    mark_notification_read(practice, notice.pk)
    assert email_notification(notice.pk) == 0 and mailoutbox == []


def test_ingest_emails_the_opted_in_clinician(
    practice, clinician, mailoutbox, django_capture_on_commit_callbacks
):
    """Through the pipeline, where the notices are made (linking.notify_new_images)."""
    _opt_in(clinician, "clinician@example.ca")
    Notification.objects.filter(practice=practice).update(read_at="2026-01-01T00:00Z")
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


def test_bell_is_not_for_a_role_without_notifications(client_for, practice_admin, practice):
    client = client_for(practice_admin)
    assert client.get(reverse("notification_bell")).status_code == 403
    assert 'id="bell"' not in client.get("/").content.decode()


def test_clicking_a_notice_marks_it_read_and_follows_its_link(clinician_client, practice):
    notice = _notice(practice)
    response = clinician_client.post(
        reverse("notification_read", args=[notice.pk]),
        {"open": "1", "next": "/review/"},
        **HTMX,
    )
    assert response.status_code == 204 and response["HX-Redirect"] == "/review/"
    notice.refresh_from_db()
    assert notice.read_at is not None

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
    mine.refresh_from_db()
    assert mine.read_at is None


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
