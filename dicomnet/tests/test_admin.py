"""Django admin: search, filters, the three study actions, and scoping to the practice.

The demo clinician is a practice admin (staff, "Practice admins" group, not superuser) of
practice A; practice B has one row of every kind, which A's admin must never see or touch.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin import RelatedFieldListFilter
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from dicomnet.models import DicomInstance, DicomSeries, DicomServer, DicomStudy
from patients.models import AccessLog, Appointment, Notification, Patient, Practice, User
from tests.dicom_samples import ingest_processed

SCOPED_MODELS = [
    Patient,
    Appointment,
    Notification,
    AccessLog,
    DicomServer,
    DicomStudy,
    DicomSeries,
    DicomInstance,
    User,
    Practice,
]


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def add_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def queued_since(before: set[int]) -> list[tuple]:
    """(task function, args) of the django-q2 tasks queued after ``before`` (OrmQ ids)."""
    new = OrmQ.objects.exclude(pk__in=before).order_by("pk")
    return [(row.task["func"], row.task["args"]) for row in new]


def queue_ids() -> set[int]:
    return set(OrmQ.objects.values_list("pk", flat=True))


def run_action(client, model, action: str, pks: list[int], **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], **extra}
    return client.post(changelist(model), data)


@pytest.fixture
def clinician(practice) -> User:
    return User.objects.get(username="clinician")


@pytest.fixture
def staff_a(client, clinician):
    assert clinician.is_staff and not clinician.is_superuser
    client.force_login(clinician)
    return client


@pytest.fixture
def superuser_client(client, practice):
    client.force_login(User.objects.create_superuser("root", password="root-password-1"))
    return client


@pytest.fixture
def practice_b(practice) -> dict:
    """Practice B with one row of every model; its patient has the same chart number as A's."""
    b = Practice.objects.create(name="Clinique B", ae_title="CLINIQUE-B")
    patient = Patient.objects.create(
        practice=b, chart_number="1001", family_name="Côté", given_name="Zoé"
    )
    user = User.objects.create_user("b-admin", practice=b, is_staff=True)
    server = DicomServer.objects.create(practice=b, name="B pano", ae_title="BPANO")
    start = timezone.now()
    appointment = Appointment.objects.create(
        practice=b,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=30),
        procedure_code="D0330",
    )
    instance = ingest_processed(
        b, patient_id="1001", patient_name="COTE^ZOE", birth_date="19880314"
    )
    study = instance.study
    DicomStudy.objects.filter(pk=study.pk).update(server=server)
    log = AccessLog.objects.create(practice=b, user=user, patient=patient, action="view")
    return {
        "practice": b,
        "patient": patient,
        "user": user,
        "server": server,
        "appointment": appointment,
        "study": study,
        "series": instance.series,
        "instance": instance,
        "notification": Notification.objects.get(study=study),
        "log": log,
    }


# --- search and filters ---------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_changelists_render_with_search_and_filters(superuser_client, practice_b, model):
    response = superuser_client.get(changelist(model), {"q": "cote"})
    assert response.status_code == 200
    cl = response.context["cl"]
    assert cl.has_filters == bool(cl.model_admin.list_filter)
    for spec in cl.filter_specs:  # every filter choice is a working link
        for choice in spec.choices(cl):
            url = changelist(model) + choice["query_string"]
            assert superuser_client.get(url).status_code == 200, url


def test_patient_search_is_accent_insensitive(superuser_client, practice):
    response = superuser_client.get(changelist(Patient), {"q": "cote"})
    assert [p.chart_number for p in response.context["cl"].result_list] == ["1001"]


def test_study_filter_by_status(superuser_client, practice):
    review = ingest_processed(practice, patient_id="9999", patient_name="NOBODY^KNOWN")
    ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    response = superuser_client.get(changelist(DicomStudy), {"status__exact": "NEEDS_REVIEW"})
    assert [s.pk for s in response.context["cl"].result_list] == [review.study_id]


def test_server_filter_lists_only_own_devices(client, clinician, practice, practice_b):
    carestream = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    own = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE").study
    DicomStudy.objects.filter(pk=own.pk).update(server=carestream)

    def server_choices() -> set:
        cl = client.get(changelist(DicomStudy)).context["cl"]
        spec = next(s for s in cl.filter_specs if getattr(s, "field_path", "") == "server")
        return {label for _, label in spec.lookup_choices}

    client.force_login(clinician)
    assert server_choices() == {str(carestream)}
    client.force_login(User.objects.create_superuser("root", password="root-password-1"))
    assert str(practice_b["server"]) in server_choices()


# --- actions --------------------------------------------------------------------------


def test_rerun_matching_links_study_once_the_patient_exists(staff_a, practice):
    study = ingest_processed(practice, patient_id="2001", patient_name="ROY^LEA").study
    assert study.status == DicomStudy.Status.NEEDS_REVIEW and study.patient is None
    lea = Patient.objects.create(
        practice=practice, chart_number="2001", family_name="Roy", given_name="Léa"
    )

    response = run_action(staff_a, DicomStudy, "rerun_matching", [study.pk])

    assert response.status_code == 302
    study.refresh_from_db()
    assert study.patient == lea
    assert study.status == DicomStudy.Status.PROCESSED
    assert Notification.objects.get(study=study).patient == lea


def test_reprocess_requeues_every_instance_of_the_study(staff_a, practice):
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    assert instance.state == DicomInstance.State.PROCESSED
    before = queue_ids()

    run_action(staff_a, DicomStudy, "reprocess_study", [instance.study_id])

    instance.refresh_from_db()
    assert instance.state == DicomInstance.State.RECEIVED
    assert queued_since(before) == [("dicomnet.ingest.pipeline.process_instance", (instance.pk,))]


def test_reprocess_instances_action(staff_a, practice):
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    before = queue_ids()
    run_action(staff_a, DicomInstance, "reprocess_instances", [instance.pk])
    instance.refresh_from_db()
    assert instance.state == DicomInstance.State.RECEIVED
    assert queued_since(before) == [("dicomnet.ingest.pipeline.process_instance", (instance.pk,))]


def test_link_to_patient_asks_then_links_by_hand(staff_a, practice, practice_b):
    study = ingest_processed(practice, patient_id="X", patient_name="UNKNOWN^PERSON").study
    helene = Patient.objects.get(practice=practice, chart_number="1007")

    form_page = run_action(staff_a, DicomStudy, "link_to_patient_action", [study.pk])
    assert form_page.status_code == 200
    choices = form_page.context["form"].fields["patient"].queryset
    assert set(choices) == set(Patient.objects.filter(practice=practice))

    done = run_action(
        staff_a,
        DicomStudy,
        "link_to_patient_action",
        [study.pk],
        apply="Link",
        patient=str(helene.pk),
    )
    assert done.status_code == 302
    study.refresh_from_db()
    assert (study.patient, study.manually_linked) == (helene, True)
    assert study.status == DicomStudy.Status.PROCESSED
    # Matching no longer overrides a person's decision.
    from dicomnet.ingest.linking import link_study

    assert link_study(study).patient == helene


def test_link_to_patient_refuses_another_practices_patient(staff_a, practice, practice_b):
    study = ingest_processed(practice, patient_id="X", patient_name="UNKNOWN^PERSON").study
    response = run_action(
        staff_a,
        DicomStudy,
        "link_to_patient_action",
        [study.pk],
        apply="Link",
        patient=str(practice_b["patient"].pk),
    )
    assert response.status_code == 200  # the form again, with an error
    assert response.context["form"].errors["patient"]
    study.refresh_from_db()
    assert study.patient is None and not study.manually_linked


# --- scoping --------------------------------------------------------------------------


def b_row(practice_b, model):
    key = {
        Patient: "patient",
        Appointment: "appointment",
        Notification: "notification",
        AccessLog: "log",
        DicomServer: "server",
        DicomStudy: "study",
        DicomSeries: "series",
        DicomInstance: "instance",
        User: "user",
        Practice: "practice",
    }[model]
    return practice_b[key]


def practice_of(row) -> int:
    return row.pk if isinstance(row, Practice) else row.practice_id


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_practice_admin_lists_only_own_rows(client, clinician, practice, practice_b, model):
    ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")  # A has rows too
    AccessLog.objects.create(practice=practice, user=clinician, action="view")
    theirs = b_row(practice_b, model)

    client.force_login(clinician)
    response = client.get(changelist(model))
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows, "practice A's own rows are listed"
    assert all(practice_of(r) == practice.pk for r in rows)
    assert theirs.pk not in {r.pk for r in rows}
    # Filters offer no practice, and related choices come from A's rows only.
    specs = response.context["cl"].filter_specs
    assert "practice" not in [s.field_path for s in specs if hasattr(s, "field_path")]
    for spec in specs:
        if isinstance(spec, RelatedFieldListFilter):
            related = spec.field.related_model
            own = set(related.objects.filter(practice=practice).values_list("pk", flat=True))
            assert {pk for pk, _ in spec.lookup_choices} <= own

    # Their object page is "not found" for A; the superuser sees both practices.
    page = client.get(change_url(theirs))
    assert page.status_code == 302 and page["Location"] == reverse("admin:index")
    client.force_login(User.objects.create_superuser("root", password="root-password-1"))
    everything = client.get(changelist(model)).context["cl"].result_list
    assert theirs.pk in {r.pk for r in everything}


def test_practice_admin_cannot_act_on_other_practice_rows(staff_a, practice_b):
    study = practice_b["study"]
    instance = practice_b["instance"]
    before = (study.patient, study.status, study.manually_linked)
    queue_before = queue_ids()

    for action in ["rerun_matching", "reprocess_study", "link_to_patient_action"]:
        # The selection is filtered through A's queryset: the action gets no rows.
        run_action(
            staff_a,
            DicomStudy,
            action,
            [study.pk],
            apply="Link",
            patient=str(practice_b["patient"].pk),
        )
    run_action(staff_a, DicomInstance, "reprocess_instances", [instance.pk])

    study.refresh_from_db()
    instance.refresh_from_db()
    assert (study.patient, study.status, study.manually_linked) == before
    assert instance.state == DicomInstance.State.PROCESSED
    assert queued_since(queue_before) == []


def test_practice_admin_cannot_change_or_delete_other_practice_rows(staff_a, practice_b):
    patient = practice_b["patient"]
    staff_a.post(change_url(patient), {"chart_number": "X", "family_name": "Hijacked"})
    staff_a.post(reverse("admin:patients_patient_delete", args=[patient.pk]), {"post": "yes"})
    patient.refresh_from_db()
    assert patient.family_name == "Côté"


def test_foreign_key_choices_are_scoped(staff_a, practice, practice_b):
    study = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE").study
    form = staff_a.get(change_url(study)).context["adminform"].form
    assert set(form.fields["server"].queryset) == set(DicomServer.objects.filter(practice=practice))
    assert list(form.fields["practice"].queryset) == [practice]
    assert form.fields["practice"].disabled

    # A raw-id patient of practice B is refused on save.
    data = {
        "patient": str(practice_b["patient"].pk),
        "start_0": "2025-01-10",
        "start_1": "09:00:00",
        "end_0": "2025-01-10",
        "end_1": "09:30:00",
        "status": "BOOKED",
    }
    response = staff_a.post(add_url(Appointment), data)
    assert response.status_code == 200
    assert "patient" in response.context["adminform"].form.errors
    assert not Appointment.objects.filter(start__date=dt.date(2025, 1, 10)).exists()


def test_new_rows_get_the_admins_practice(staff_a, practice):
    response = staff_a.post(
        add_url(Patient),
        {"chart_number": "3001", "family_name": "Bergeron", "given_name": "Maël", "sex": "M"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Patient.objects.get(chart_number="3001").practice == practice

    # The practice is set on the add form too, and a duplicate chart number is a form error.
    assert staff_a.get(add_url(Patient)).context["adminform"].form["practice"].value() == (
        practice.pk
    )
    again = staff_a.post(
        add_url(Patient), {"chart_number": "3001", "family_name": "Autre", "given_name": "A"}
    )
    assert again.status_code == 200
    assert again.context["adminform"].form.non_field_errors()


def test_practice_admin_cannot_make_themselves_superuser(staff_a, clinician):
    form = staff_a.get(change_url(clinician)).context["adminform"].form
    assert "is_superuser" not in form.fields


def test_staff_without_practice_sees_nothing(client, practice_b):
    from patients.demo import practice_admin_group

    lost = User.objects.create_user("lost", is_staff=True)
    lost.groups.add(practice_admin_group())
    client.force_login(lost)
    for model in [Patient, DicomStudy]:
        assert list(client.get(changelist(model)).context["cl"].result_list) == []
    assert client.get(add_url(Patient)).status_code == 403


def test_access_log_is_read_only(superuser_client, practice_b):
    log = practice_b["log"]
    assert superuser_client.get(add_url(AccessLog)).status_code == 403
    superuser_client.post(
        reverse("admin:patients_accesslog_delete", args=[log.pk]), {"post": "yes"}
    )
    assert AccessLog.objects.filter(pk=log.pk).exists()


def test_practice_admin_adds_a_user_to_their_practice(staff_a, practice):
    response = staff_a.post(
        add_url(User),
        {
            "username": "hygienist",
            "usable_password": "true",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert User.objects.get(username="hygienist").practice == practice
