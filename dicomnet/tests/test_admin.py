"""Django admin: search, filters, the three study actions, and scoping to the practice.

The demo clinician, made practice admin too here (staff, "Clinicians" and "Practice admins"
groups, not superuser: a dentist who runs the clinic), is the admin of practice A; practice
B has one row of every kind, which A's admin must never see or touch.
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
def practice_b(practice, other_practice) -> dict:
    """Practice B with one row of every model; its patient has the same chart number as A's."""
    b, patient, user = other_practice.practice, other_practice.patient, other_practice.user
    server = other_practice.server
    start = timezone.now()
    appointment = Appointment.objects.create(
        practice=b,
        patient=patient,
        start=start,
        end=start + dt.timedelta(minutes=30),
        procedure_code="D0330",
    )
    instance = ingest_processed(b, patient_id="1001", patient_name="AUTRE^PATIENTE")
    study = instance.study
    assert study.patient == patient
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


@pytest.fixture
def clinician(clinician):
    """The demo clinician, in the "Practice admins" group too (patients/roles.py)."""
    from django.contrib.auth.models import Group

    clinician.groups.add(Group.objects.get(name="Practice admins"))
    return clinician


def test_the_demo_clinician_is_a_practice_admin_not_a_superuser(clinician):
    assert clinician.is_staff and not clinician.is_superuser
    assert clinician.groups.filter(name="Practice admins").exists()


# --- search and filters ---------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_changelists_render_with_search_and_filters(admin_client, practice_b, model):
    response = admin_client.get(changelist(model), {"q": "cote"})
    assert response.status_code == 200
    cl = response.context["cl"]
    assert cl.has_filters == bool(cl.model_admin.list_filter)
    for spec in cl.filter_specs:  # every filter choice is a working link
        for choice in spec.choices(cl):
            url = changelist(model) + choice["query_string"]
            assert admin_client.get(url).status_code == 200, url


def test_patient_search_is_accent_insensitive(admin_client, practice):
    response = admin_client.get(changelist(Patient), {"q": "cote"})
    assert [p.chart_number for p in response.context["cl"].result_list] == ["1001"]


def test_study_filter_by_status(admin_client, practice):
    review = ingest_processed(practice, patient_id="9999", patient_name="NOBODY^KNOWN")
    ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    response = admin_client.get(changelist(DicomStudy), {"status__exact": "NEEDS_REVIEW"})
    assert [s.pk for s in response.context["cl"].result_list] == [review.study_id]


def test_server_filter_lists_only_own_devices(clinician_client, admin_client, practice, practice_b):
    carestream = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    own = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE").study
    DicomStudy.objects.filter(pk=own.pk).update(server=carestream)

    def server_choices(client) -> set:
        cl = client.get(changelist(DicomStudy)).context["cl"]
        spec = next(s for s in cl.filter_specs if getattr(s, "field_path", "") == "server")
        return {label for _, label in spec.lookup_choices}

    assert server_choices(clinician_client) == {str(carestream)}
    assert str(practice_b["server"]) in server_choices(admin_client)


# --- actions --------------------------------------------------------------------------


def test_rerun_matching_links_study_once_the_patient_exists(clinician_client, practice):
    study = ingest_processed(practice, patient_id="2001", patient_name="ROY^LEA").study
    assert study.status == DicomStudy.Status.NEEDS_REVIEW and study.patient is None
    lea = Patient.objects.create(
        practice=practice, chart_number="2001", family_name="Roy", given_name="Léa"
    )

    response = run_action(clinician_client, DicomStudy, "rerun_matching", [study.pk])

    assert response.status_code == 302
    study.refresh_from_db()
    assert study.patient == lea
    assert study.status == DicomStudy.Status.PROCESSED
    assert Notification.objects.get(study=study).patient == lea


def test_reprocess_requeues_every_instance_of_the_study(clinician_client, practice):
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    assert instance.state == DicomInstance.State.PROCESSED
    before = queue_ids()

    run_action(clinician_client, DicomStudy, "reprocess_study", [instance.study_id])

    instance.refresh_from_db()
    assert instance.state == DicomInstance.State.RECEIVED
    assert queued_since(before) == [("dicomnet.ingest.pipeline.process_instance", (instance.pk,))]


def test_reprocess_instances_action(clinician_client, practice):
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    before = queue_ids()
    run_action(clinician_client, DicomInstance, "reprocess_instances", [instance.pk])
    instance.refresh_from_db()
    assert instance.state == DicomInstance.State.RECEIVED
    assert queued_since(before) == [("dicomnet.ingest.pipeline.process_instance", (instance.pk,))]


def test_link_to_patient_asks_then_links_by_hand(clinician_client, practice, practice_b):
    study = ingest_processed(practice, patient_id="X", patient_name="UNKNOWN^PERSON").study
    helene = Patient.objects.get(practice=practice, chart_number="1007")

    form_page = run_action(clinician_client, DicomStudy, "link_to_patient_action", [study.pk])
    assert form_page.status_code == 200
    choices = form_page.context["form"].fields["patient"].queryset
    assert set(choices) == set(Patient.objects.filter(practice=practice))

    done = run_action(
        clinician_client,
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


def test_link_to_patient_refuses_another_practices_patient(clinician_client, practice, practice_b):
    study = ingest_processed(practice, patient_id="X", patient_name="UNKNOWN^PERSON").study
    response = run_action(
        clinician_client,
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
def test_practice_admin_lists_only_own_rows(
    clinician_client, admin_client, clinician, practice, practice_b, model
):
    ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")  # A has rows too
    AccessLog.objects.create(practice=practice, user=clinician, action="view")
    theirs = b_row(practice_b, model)

    response = clinician_client.get(changelist(model))
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
    page = clinician_client.get(change_url(theirs))
    assert page.status_code == 302 and page["Location"] == reverse("admin:index")
    everything = admin_client.get(changelist(model)).context["cl"].result_list
    assert theirs.pk in {r.pk for r in everything}


def test_practice_admin_cannot_act_on_other_practice_rows(clinician_client, practice_b):
    study = practice_b["study"]
    instance = practice_b["instance"]
    before = (study.patient, study.status, study.manually_linked)
    queue_before = queue_ids()

    for action in ["rerun_matching", "reprocess_study", "link_to_patient_action"]:
        # The selection is filtered through A's queryset: the action gets no rows.
        run_action(
            clinician_client,
            DicomStudy,
            action,
            [study.pk],
            apply="Link",
            patient=str(practice_b["patient"].pk),
        )
    run_action(clinician_client, DicomInstance, "reprocess_instances", [instance.pk])

    study.refresh_from_db()
    instance.refresh_from_db()
    assert (study.patient, study.status, study.manually_linked) == before
    assert instance.state == DicomInstance.State.PROCESSED
    assert queued_since(queue_before) == []


def test_practice_admin_cannot_change_or_delete_other_practice_rows(clinician_client, practice_b):
    patient = practice_b["patient"]
    clinician_client.post(change_url(patient), {"chart_number": "X", "family_name": "Hijacked"})
    clinician_client.post(
        reverse("admin:patients_patient_delete", args=[patient.pk]), {"post": "yes"}
    )
    patient.refresh_from_db()
    assert patient.family_name == "Autre"


def test_foreign_key_choices_are_scoped(clinician_client, practice, practice_b):
    study = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE").study
    form = clinician_client.get(change_url(study)).context["adminform"].form
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
    response = clinician_client.post(add_url(Appointment), data)
    assert response.status_code == 200
    assert "patient" in response.context["adminform"].form.errors
    assert not Appointment.objects.filter(start__date=dt.date(2025, 1, 10)).exists()


def test_new_rows_get_the_admins_practice(clinician_client, practice):
    response = clinician_client.post(
        add_url(Patient),
        {"chart_number": "3001", "family_name": "Bergeron", "given_name": "Maël", "sex": "M"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Patient.objects.get(chart_number="3001").practice == practice

    # The practice is set on the add form too, and a duplicate chart number is a form error.
    assert clinician_client.get(add_url(Patient)).context["adminform"].form["practice"].value() == (
        practice.pk
    )
    again = clinician_client.post(
        add_url(Patient), {"chart_number": "3001", "family_name": "Autre", "given_name": "A"}
    )
    assert again.status_code == 200
    assert again.context["adminform"].form.non_field_errors()


def test_practice_admin_cannot_make_themselves_superuser(clinician_client, clinician):
    form = clinician_client.get(change_url(clinician)).context["adminform"].form
    assert "is_superuser" not in form.fields


def test_staff_without_practice_sees_nothing(client_for, practice_b):
    from django.contrib.auth.models import Group

    lost = User.objects.create_user("lost", is_staff=True)
    lost.groups.add(*Group.objects.all())
    client = client_for(lost)
    for model in [Patient, DicomStudy]:
        assert list(client.get(changelist(model)).context["cl"].result_list) == []
    assert client.get(add_url(Patient)).status_code == 403


def test_access_log_is_read_only(admin_client, practice_b):
    log = practice_b["log"]
    assert admin_client.get(add_url(AccessLog)).status_code == 403
    admin_client.post(reverse("admin:patients_accesslog_delete", args=[log.pk]), {"post": "yes"})
    assert AccessLog.objects.filter(pk=log.pk).exists()


def test_practice_admin_adds_a_user_to_their_practice(clinician_client, practice):
    response = clinician_client.post(
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
