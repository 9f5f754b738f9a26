"""The interface speaks French by default (Quebec) and English on request."""

from __future__ import annotations

from django.urls import reverse
from django.utils import translation

from dicomnet.ingest.linking import notify_new_images
from dicomnet.models import DicomStudy


def test_french_by_default_english_when_the_browser_asks(client, practice, settings):
    settings.LANGUAGE_CODE = "fr-ca"
    login = reverse("login")
    assert "Mot de passe" in client.get(login).content.decode()
    english = client.get(login, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Password" in english and "Mot de passe" not in english


def test_language_switch_is_remembered(clinician_client, settings):
    settings.LANGUAGE_CODE = "fr-ca"
    client = clinician_client
    assert "Téléverser" in client.get(reverse("patient_list")).content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/patients/"})
    page = client.get(reverse("patient_list")).content.decode()
    assert "Upload DICOM" in page and "Téléverser" not in page


def test_notifications_are_shown_in_the_reader_language(practice, settings):
    """Stored as parameters, rendered for whoever reads: French by default, English on
    request; the DICOM name as people read it ("COTE, ZOE", not "COTE^ZOE")."""
    settings.LANGUAGE_CODE = "fr-ca"
    study = DicomStudy.objects.create(
        practice=practice, study_instance_uid="1.2.3", patient_name="COTE^ZOE"
    )
    notice = notify_new_images(study)
    assert notice.message == "0 new X-rays for COTE, ZOE"  # the admin's English
    with translation.override("fr"):
        assert notice.text == "0 nouvelle radiographie pour COTE, ZOE"
    with translation.override("en"):
        assert notice.text == "0 new X-rays for COTE, ZOE"
    study.status = DicomStudy.Status.NEEDS_REVIEW
    notice = notify_new_images(study)
    with translation.override("fr"):
        assert notice.text.endswith("(à vérifier)")
    with translation.override("en"):
        assert notice.text.endswith("(needs review)")
