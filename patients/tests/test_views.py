"""Clinician pages: login, practice scoping, accent-insensitive search, the patient page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from patients.models import AccessLog, Notification, Patient, Practice, User
from tests.dicom_samples import ingest_processed


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


@pytest.fixture
def clinician(practice) -> User:
    return User.objects.get(username="clinician")


@pytest.fixture
def other_practice(db) -> Practice:
    """Practice B, with a patient of the same chart number as the demo's Côté Zoé."""
    other = Practice.objects.create(name="Clinique B", ae_title="CLINIQUE-B")
    Patient.objects.create(
        practice=other, chart_number="1001", family_name="Côté", given_name="Zoé"
    )
    User.objects.create_user("b-user", password="b-password-1", practice=other)
    return other


def test_pages_require_login(client, practice):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    for url in [
        reverse("home"),
        reverse("patient_list"),
        reverse("patient_detail", args=[cote.pk]),
        reverse("dicom_upload"),
        reverse("instance_image", args=[1, "thumbnail"]),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_expired_session_sends_htmx_polls_to_the_login_page(client, practice):
    """A polling fragment must not swap the login form into the page."""
    response = client.get(
        reverse("calendar_body"),
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/calendar/?day=2026-11-25",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fcalendar%2F%3Fday%3D2026-11-25"


def test_login_page_logs_in_the_demo_clinician(client, practice):
    response = client.post(reverse("login"), {"username": "clinician", "password": "nexrel-demo"})
    assert response.status_code == 302
    assert client.get(reverse("patient_list")).status_code == 200


def test_other_practice_patient_and_images_are_404(client, clinician, other_practice):
    theirs = Patient.objects.get(practice=other_practice)
    instance = ingest_processed(
        other_practice, patient_id="1001", patient_name="COTE^ZOE", birth_date="19880314"
    )
    assert instance.study.patient == theirs and instance.thumbnail_key
    client.force_login(clinician)

    assert client.get(reverse("patient_detail", args=[theirs.pk])).status_code == 404
    for kind in ["thumbnail", "preview"]:
        url = reverse("instance_image", args=[instance.pk, kind])
        assert client.get(url).status_code == 404
    # ...while their own user does get them.
    client.force_login(User.objects.get(username="b-user"))
    assert client.get(reverse("patient_detail", args=[theirs.pk])).status_code == 200
    image = client.get(reverse("instance_image", args=[instance.pk, "thumbnail"]))
    assert image.status_code == 200


def test_patient_list_shows_only_own_practice(client, clinician, other_practice):
    client.force_login(User.objects.get(username="b-user"))
    response = client.get(reverse("patient_list"))
    assert [p.practice_id for p in response.context["patients"]] == [other_practice.pk]


@pytest.mark.parametrize("query", ["cote", "COTE", "Côté", "zoe cote", "1001"])
def test_patient_search_ignores_accents_and_case(client, clinician, query):
    client.force_login(clinician)
    response = client.get(reverse("patient_list"), {"q": query})
    assert response.status_code == 200
    assert [p.chart_number for p in response.context["patients"]] == ["1001"]
    assert "Côté, Zoé" in response.content.decode()


def test_patient_search_without_match_says_so(client, clinician):
    client.force_login(clinician)
    response = client.get(reverse("patient_list"), {"q": "nobody"})
    assert list(response.context["patients"]) == []


def test_patient_page_lists_studies_with_thumbnails_and_is_audited(client, clinician, practice):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    instance = ingest_processed(
        practice, patient_id="1001", patient_name="COTE^ZOE", birth_date="19880314"
    )
    assert instance.study.patient == cote
    client.force_login(clinician)

    response = client.get(reverse("patient_detail", args=[cote.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Zoé Côté" in page
    thumb_url = reverse("instance_image", args=[instance.pk, "thumbnail"])
    assert f'src="{thumb_url}"' in page
    assert f'data-study="{instance.study_id}"' in page
    assert '<span class="status-processed">' in page
    image = client.get(thumb_url)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/webp"
    assert is_webp(b"".join(image.streaming_content))

    log = AccessLog.objects.get(action="view_patient_images")
    assert (log.user, log.patient, log.practice) == (clinician, cote, practice)
    assert log.object_ref == f"patient:{cote.pk}"


def test_patient_page_without_images(client, clinician, practice):
    cote = Patient.objects.get(practice=practice, chart_number="1002")
    client.force_login(clinician)
    response = client.get(reverse("patient_detail", args=[cote.pk]))
    assert response.status_code == 200
    assert list(response.context["studies"]) == []


def test_new_image_notice_shows_until_the_patient_page_is_opened(client, clinician, practice):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    ingest_processed(practice, patient_id="1002", patient_name="BELANGER^ETIENNE")
    client.force_login(clinician)

    home = client.get(reverse("home")).content.decode()
    assert "1 new X-ray for Zoé Côté" in home
    assert "1 new X-ray for Étienne Bélanger" in home

    client.get(reverse("patient_detail", args=[cote.pk]))

    home = client.get(reverse("home")).content.decode()
    assert "1 new X-ray for Zoé Côté" not in home
    assert "1 new X-ray for Étienne Bélanger" in home  # not opened yet
    assert Notification.objects.get(patient=cote).read_at is not None
