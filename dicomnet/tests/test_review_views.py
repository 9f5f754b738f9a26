"""The review queue's pages: what they show, one-click decisions, practice scoping."""

from __future__ import annotations

from django.urls import reverse

from dicomnet.models import DicomStudy, StudyAssignment
from patients.models import AccessLog, Patient
from tests.dicom_samples import ingest_processed


def waiting(practice, **kwargs) -> DicomStudy:
    kwargs = {"patient_id": "X99", "patient_name": "Lestrade^G", **kwargs}
    return ingest_processed(practice, **kwargs).study


def test_queue_shows_demographics_readably_with_thumbnails_and_candidates(
    clinician_client, practice
):
    study = waiting(practice, patient_name="COTE^ZOE", birth_date="19880315")  # dob differs
    nameless = waiting(practice, patient_id="", patient_name="")
    ob = waiting(practice, patient_id="X98", patient_name="OB^^^^")
    response = clinician_client.get(reverse("review_queue"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "COTE, ZOE" in html and "Unknown patient" in html and ">OB<" in html
    assert "^" not in html.split("<main>")[1]
    assert f'value="{study.pk}"' in html and f'value="{ob.pk}"' in html
    assert html.count('class="thumb"') == 3
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    assert f'name="patient" value="{cote.pk}"' in html  # a candidate, one click
    assert "same name, different date of birth" in html
    logged = set(AccessLog.objects.filter(action="view_review_study").values_list("object_ref"))
    assert {(f"study:{s.pk}",) for s in (study, nameless, ob)} <= logged


def test_assign_then_undo_in_one_click_each(clinician_client, practice):
    study = waiting(practice)
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    response = clinician_client.post(
        reverse("review_assign"), {"study": [study.pk], "patient": cote.pk}
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.patient == cote
    batch = StudyAssignment.objects.get(study=study).batch
    html = clinician_client.get(reverse("review_queue")).content.decode()
    assert reverse("review_undo", args=[batch]) in html

    assert clinician_client.post(reverse("review_undo", args=[batch])).status_code == 302
    study.refresh_from_db()
    assert study.patient is None and study.status == DicomStudy.Status.NEEDS_REVIEW


def test_create_patient_from_the_queue(clinician_client, practice):
    study = waiting(practice, patient_name="NOUVEAU^PAUL", birth_date="20000101")
    response = clinician_client.post(
        reverse("review_create_patient"), {"study": [study.pk], "chart_number": "X99"}
    )
    assert response.status_code == 302
    patient = Patient.objects.get(practice=practice, chart_number="X99")
    assert (patient.family_name, patient.given_name) == ("Nouveau", "Paul")
    study.refresh_from_db()
    assert study.patient == patient


def test_search_box_returns_buttons_for_the_group_form(clinician_client, practice):
    response = clinician_client.get(
        reverse("review_patient_search"), {"q": "cote", "form": "assign-s1"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert 'form="assign-s1"' in html and "Côté, Zoé" in html


def test_another_practices_study_or_patient_is_404(
    clinician_client, client_for, practice, other_practice
):
    theirs = waiting(other_practice.practice)
    mine = waiting(practice)
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    html = clinician_client.get(reverse("review_queue")).content.decode()
    assert f'value="{theirs.pk}"' not in html
    for data in [
        {"study": [theirs.pk], "patient": cote.pk},
        {"study": [mine.pk, theirs.pk], "patient": cote.pk},
        {"study": [mine.pk], "patient": other_practice.patient.pk},
    ]:
        assert clinician_client.post(reverse("review_assign"), data).status_code == 404
    assert (
        clinician_client.post(
            reverse("review_create_patient"), {"study": [theirs.pk], "chart_number": "7"}
        ).status_code
        == 404
    )
    theirs_client = client_for(other_practice.user)
    other_practice.user.groups.add(*clinician_client_groups(practice))
    response = theirs_client.post(
        reverse("review_assign"), {"study": [theirs.pk], "patient": other_practice.patient.pk}
    )
    assert response.status_code == 302
    batch = StudyAssignment.objects.get(study=theirs).batch
    assert clinician_client.post(reverse("review_undo", args=[batch])).status_code == 404
    assert not DicomStudy.objects.filter(pk__in=[mine.pk], patient__isnull=False).exists()


def clinician_client_groups(practice):
    from patients.models import User

    return list(User.objects.get(username="clinician").groups.all())


def test_admin_action_replaces_the_reason_and_records_it(client_for, practice):
    from patients.models import User

    admin = User.objects.create_superuser("root", password="root-password-1")
    study = waiting(practice)
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    client = client_for(admin)
    response = client.post(
        reverse("admin:dicomnet_dicomstudy_changelist"),
        {
            "action": "link_to_patient_action",
            "_selected_action": [study.pk],
            "apply": "1",
            "patient": cote.pk,
        },
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.patient == cote
    assert study.status_reason == "linked by hand to chart 1001 by root"
    assert StudyAssignment.objects.filter(study=study, by=admin).exists()
