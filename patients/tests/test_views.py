"""Clinician pages: login, practice scoping, accent-insensitive search, the patient page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from patients.models import AccessLog, Notification, Patient
from tests.dicom_samples import ingest_processed


def is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


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


def test_other_practice_patient_and_images_are_404(clinician_client, client_for, other_practice):
    theirs = other_practice.patient  # chart 1001, like the demo's Zoé Côté
    instance = ingest_processed(
        other_practice.practice, patient_id="1001", patient_name="AUTRE^PATIENTE"
    )
    assert instance.study.patient == theirs and instance.thumbnail_key

    assert clinician_client.get(reverse("patient_detail", args=[theirs.pk])).status_code == 404
    for kind in ["thumbnail", "preview"]:
        url = reverse("instance_image", args=[instance.pk, kind])
        assert clinician_client.get(url).status_code == 404
    # ...while their own user does get them.
    client = client_for(other_practice.user)
    assert client.get(reverse("patient_detail", args=[theirs.pk])).status_code == 200
    image = client.get(reverse("instance_image", args=[instance.pk, "thumbnail"]))
    assert image.status_code == 200


def test_patient_list_shows_only_own_practice(client_for, practice, other_practice):
    response = client_for(other_practice.user).get(reverse("patient_list"))
    assert [p.practice_id for p in response.context["patients"]] == [other_practice.practice.pk]


@pytest.mark.parametrize("query", ["cote", "COTE", "Côté", "zoe cote", "1001"])
def test_patient_search_ignores_accents_and_case(clinician_client, query):
    response = clinician_client.get(reverse("patient_list"), {"q": query})
    assert response.status_code == 200
    assert [p.chart_number for p in response.context["patients"]] == ["1001"]
    assert "Côté, Zoé" in response.content.decode()


def test_patient_search_without_match_says_so(clinician_client):
    response = clinician_client.get(reverse("patient_list"), {"q": "nobody"})
    assert list(response.context["patients"]) == []


def test_patient_page_lists_studies_with_thumbnails_and_is_audited(
    clinician_client, clinician, practice
):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    instance = ingest_processed(
        practice, patient_id="1001", patient_name="COTE^ZOE", birth_date="19880314"
    )
    assert instance.study.patient == cote

    response = clinician_client.get(reverse("patient_detail", args=[cote.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Zoé Côté" in page
    thumb_url = reverse("instance_image", args=[instance.pk, "thumbnail"])
    assert f'src="{thumb_url}"' in page
    assert f'data-study="{instance.study_id}"' in page
    assert '<span class="status-processed">' in page
    image = clinician_client.get(thumb_url)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/webp"
    assert is_webp(b"".join(image.streaming_content))

    log = AccessLog.objects.get(action="view_patient_images")
    assert (log.user, log.patient, log.practice) == (clinician, cote, practice)
    assert log.object_ref == f"patient:{cote.pk}"


def test_patient_page_without_images(clinician_client, practice):
    cote = Patient.objects.get(practice=practice, chart_number="1002")
    response = clinician_client.get(reverse("patient_detail", args=[cote.pk]))
    assert response.status_code == 200
    assert response.context["timeline"] == []


def test_new_image_notice_shows_until_the_patient_page_is_opened(
    clinician_client, client_for, clinician, frontdesk, practice
):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    ingest_processed(practice, patient_id="1002", patient_name="BELANGER^ETIENNE")

    home = clinician_client.get(reverse("home")).content.decode()
    assert "1 new X-ray for Zoé Côté" in home
    assert "1 new X-ray for Étienne Bélanger" in home

    clinician_client.get(reverse("patient_detail", args=[cote.pk]))

    home = clinician_client.get(reverse("home")).content.decode()
    assert "1 new X-ray for Zoé Côté" not in home
    assert "1 new X-ray for Étienne Bélanger" in home  # not opened yet
    notice = Notification.objects.get(patient=cote)
    assert notice.reads.get().user == clinician
    # Read by the clinician who opened the chart, not by the front desk.
    assert "1 new X-ray for Zoé Côté" in client_for(frontdesk).get(reverse("home")).content.decode()
