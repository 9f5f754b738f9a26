"""The audit trail (issue 10 §3): what writes events, the chain and its check, the DICOM
audit messages against PS3.15's schema, the exports and the privacy officer's page."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import rnc2rng
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse
from lxml import etree

from patients import audit, roles
from patients.atna import audit_message_xml
from patients.audit_search import AuditQuery, communications, search_audit, who_saw_images
from patients.models import AuditEvent, AuditTrailIsAppendOnly, ConfidentialityIncident, Patient
from tests.dicom_samples import ingest_processed

SCHEMA = Path(audit.__file__).parent / "schema" / "dicom-audit-message.rnc"


@pytest.fixture(scope="module")
def relax_ng() -> etree.RelaxNG:
    rng = rnc2rng.dumps(rnc2rng.load(str(SCHEMA)))
    return etree.RelaxNG(etree.fromstring(rng.encode()))


def _events(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(**filters).order_by("id"))


def _raw(sql: str, params: list) -> None:
    """Someone writing to the table behind the app's back; on PostgreSQL someone with the
    rights to drop the append-only trigger first (test_audit_postgres.py proves the trigger),
    inside the test's transaction, so it is back afterwards."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE patients_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE patients_auditevent ENABLE TRIGGER USER")


# ---------------------------------------------------------------------- the chain


def _three(practice) -> list[AuditEvent]:
    return [
        audit.record("110100", action="E", what=f"test_{n}", practice_id=practice.pk)
        for n in range(3)
    ]


def test_the_chain_links_each_row_to_the_one_before(practice):
    first, second, third = _three(practice)
    assert second.previous_hash == first.hash and third.previous_hash == second.hash
    assert list(audit.verify()) == []


def test_the_model_refuses_to_change_or_delete(practice):
    event, *_ = _three(practice)
    event.what = "changed"
    with pytest.raises(AuditTrailIsAppendOnly):
        event.save()
    with pytest.raises(AuditTrailIsAppendOnly):
        event.delete()
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(what="changed")
    with pytest.raises(AuditTrailIsAppendOnly):
        AuditEvent.objects.all().delete()


def test_verify_names_a_row_updated_behind_the_apps_back(practice):
    _, second, _ = _three(practice)
    _raw("UPDATE patients_auditevent SET username = %s WHERE id = %s", ["mallory", second.pk])
    (problem,) = audit.verify()
    assert (problem.event_id, problem.kind) == (second.pk, "changed")
    with pytest.raises(CommandError, match="broken"):
        call_command("verify_audit", stderr=io.StringIO())


def test_verify_names_the_row_after_a_deleted_one(practice):
    _, second, third = _three(practice)
    _raw("DELETE FROM patients_auditevent WHERE id = %s", [second.pk])
    (problem,) = audit.verify()
    assert (problem.event_id, problem.kind) == (third.pk, "gap")
    assert f"audit event {third.pk}" in problem.message


def test_verify_names_a_row_inserted_without_the_key(practice):
    *_, last = _three(practice)
    forged = audit.chain_hash(last, last.hash)  # well formed, but not this row's content
    _raw(
        "INSERT INTO patients_auditevent (at, event_id, event_type, action, outcome, "
        "outcome_text, what, practice_id, user_id, username, ae_title, address, patient_id, "
        "patient_chart, patient_name, study_uid, object_ref, detail, previous_hash, hash) "
        "VALUES (%s, '110110', '', 'R', 0, '', 'forged', %s, NULL, 'mallory', '', '', NULL, "
        "'', '', '', '', '{}', %s, %s)",
        [last.at, practice.pk, last.hash, forged[::-1]],
    )
    (problem,) = audit.verify()
    assert problem.kind == "changed"
    assert problem.event_id == AuditEvent.objects.order_by("-id").first().pk
    out = io.StringIO()
    _raw("DELETE FROM patients_auditevent WHERE what = 'forged'", [])
    call_command("verify_audit", stdout=out)
    assert "intact" in out.getvalue()


# ---------------------------------------------------------------------- what writes events


def test_logins_failed_logins_lockouts_and_logouts(practice, clinician, settings):
    client = Client(REMOTE_ADDR="203.0.113.50")
    client.post("/accounts/login/", {"username": "clinician", "password": "nope"})
    failed = _events(what="login_failed")[-1]
    assert (failed.event_id, failed.username, failed.address) == (
        "110114",
        "clinician",
        "203.0.113.50",
    )
    assert failed.outcome == AuditEvent.Outcome.MINOR_FAILURE
    assert failed.practice_id == practice.pk
    client.post("/accounts/login/", {"username": "clinician", "password": "nexrel-demo"})
    login = _events(what="login")[-1]
    assert (login.event_id, login.event_type, login.user_id) == ("110114", "110122", clinician.pk)
    client.post("/accounts/logout/")
    assert _events(what="logout")[-1].user_id == clinician.pk
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "frontdesk", "password": "nope"})
    locked = _events(what="login_locked_out")[-1]
    assert (locked.event_id, locked.username) == ("110113", "frontdesk")


def test_a_change_of_roles_names_who_and_what(practice, clinician, practice_admin, client_for):
    frontdesk = Group.objects.get(name=roles.FRONT_DESK)
    clinician.groups.add(frontdesk)
    event = _events(what="roles_changed")[-1]
    assert (event.event_id, event.event_type) == ("110113", "110136")
    assert event.object_ref == "user:clinician"
    assert event.detail == {"change": "add", "items": [roles.FRONT_DESK]}


def test_the_chart_the_api_and_a_refusal_are_recorded(practice, clinician_client, frontdesk):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    clinician_client.get(reverse("patient_detail", args=[cote.pk]))
    seen = _events(what="view_patient_images")[-1]
    assert (seen.event_id, seen.patient_id, seen.patient_name) == ("110103", cote.pk, "Zoé Côté")
    # A REST read with no event of its own gets the generic one, naming the route.
    clinician_client.get("/api/dental/appointments/")
    read = _events(event_id="110110", action="R")[-1]
    assert read.what.startswith("http:") and read.object_ref == "GET /api/dental/appointments/"
    # A refused request is a security alert.
    desk = Client()
    desk.force_login(frontdesk)
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    assert desk.get(reverse("instance_image", args=[instance.pk, "thumbnail"])).status_code == 403
    refused = _events(event_id="110113", username="frontdesk")[-1]
    assert (refused.event_type, refused.outcome_text) == ("110132", "HTTP 403")


def test_dicomweb_reads_are_recorded(practice, clinician_client):
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    study = instance.study.study_instance_uid
    assert clinician_client.get(f"/dicomweb/studies?StudyInstanceUID={study}").status_code == 200
    assert _events(what="dicomweb_search")[-1].event_id == "110112"
    assert clinician_client.get(f"/dicomweb/studies/{study}/metadata").status_code == 200
    assert _events(what="dicomweb_retrieve")[-1].patient_chart == "1001"


# ---------------------------------------------------------------------- exports


def test_every_kind_of_event_is_a_valid_dicom_audit_message(practice, relax_ng, clinician):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    events = [
        audit.record(
            "110103",
            action="R",
            what="view_study",
            user=clinician,
            patient=cote,
            study_uid="1.2.826.0.1.3680043.8.498.1",
            object_ref="viewer:1.2.3",
        ),
        audit.record(
            "110112",
            action="E",
            what="c_find",
            ae_title="PLANMECA",
            address="10.0.0.5",
            practice_id=practice.pk,
            object_ref="PatientName=Côté*",
        ),
        audit.record(
            "110114",
            action="E",
            event_type="110122",
            what="login_failed",
            outcome=AuditEvent.Outcome.MINOR_FAILURE,
            outcome_text="wrong password",
            username="mallory",
            address="203.0.113.1",
        ),
        audit.record("110101", action="R", what="audit_search", user=clinician),
    ]
    for event in events:
        document = etree.fromstring(audit_message_xml(event))
        assert relax_ng.validate(document), relax_ng.error_log


def test_export_audit_writes_xml_and_csv(practice, clinician, tmp_path, relax_ng):
    for n in range(3):
        audit.record("110110", action="R", what=f"view_{n}", user=clinician)
    call_command(
        "export_audit", "--format", "atna", "--output", str(tmp_path / "xml"), stdout=io.StringIO()
    )
    files = sorted((tmp_path / "xml").glob("*.xml"))
    assert len(files) == AuditEvent.objects.count()
    assert all(relax_ng.validate(etree.parse(str(f))) for f in files)
    call_command(
        "export_audit",
        "--format",
        "csv",
        "--output",
        str(tmp_path / "a.csv"),
        "--practice",
        str(practice.pk),
        stdout=io.StringIO(),
    )
    rows = list(csv.DictReader((tmp_path / "a.csv").open(encoding="utf-8")))
    assert {r["what"] for r in rows} >= {"view_0", "view_1", "view_2"}
    assert {r["practice_id"] for r in rows} == {str(practice.pk)}


# ---------------------------------------------------------------------- the privacy officer


def test_who_saw_her_x_rays(practice, clinician_client, client_for, other_practice):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    clinician_client.get(reverse("instance_image", args=[instance.pk, "preview"]))
    clinician_client.get(reverse("patient_detail", args=[cote.pk]))
    seen = list(who_saw_images(practice, cote.pk))
    assert seen and {e.username for e in seen} == {"clinician"}
    assert all(e.event_id in audit.IMAGE_ACCESS_EVENTS for e in seen)
    # The same answer from the page's search, accents and case aside.
    found = search_audit(practice, AuditQuery(patient="cote", kind="images"))
    assert [e.pk for e in found] == [e.pk for e in seen]
    assert not search_audit(other_practice.practice, AuditQuery(patient="cote")).exists()


def test_the_page_is_the_practice_admins_and_is_audited(
    practice, practice_admin, clinician, client_for
):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    client_for(clinician).get(reverse("patient_detail", args=[cote.pk]))
    admin = client_for(practice_admin)
    page = admin.get(reverse("audit_trail"), {"patient": "Côté", "kind": "images"})
    assert page.status_code == 200
    assert b'data-what="view_patient_images"' in page.content
    used = _events(event_id="110101")[-1]
    assert used.user_id == practice_admin.pk
    request_id = used.detail.pop("request_id")  # the page's request (nexrel/logs.py)
    assert used.detail == {"patient": "Côté", "kind": "images"} and len(request_id) == 16
    download = admin.get(reverse("audit_trail"), {"patient": "cote", "format": "csv"})
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows and all(r["patient_chart"] == "1001" for r in rows)
    assert client_for(clinician).get(reverse("audit_trail")).status_code == 403
    bad = admin.get(reverse("audit_trail"), {"since": "2026-02-01", "until": "2026-01-01"})
    assert bad.status_code == 400


# ---------------------------------------------------------------------- registers


def test_the_register_of_communications(practice, clinician, client_for, practice_admin):
    from patients.tokens import create_token

    cote = Patient.objects.get(practice=practice, chart_number="1001")
    instance = ingest_processed(practice, patient_id="1001", patient_name="COTE^ZOE")
    clinician_client = client_for(clinician)
    clinician_client.get(reverse("patient_detail", args=[cote.pk]))  # seen here: not sent
    assert clinician_client.get(reverse("record_export", args=[cote.pk])).status_code == 200
    _, token = create_token(clinician, name="referral system")
    other_system = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    study = instance.study.study_instance_uid
    assert other_system.get(f"/dicomweb/studies/{study}/metadata").status_code == 200
    listed = list(communications(practice))
    assert {e.what for e in listed} == {"export_record", "dicomweb_retrieve"}
    assert all(e.patient_chart == "1001" for e in listed)
    page = client_for(practice_admin).get(reverse("communications_register"))
    assert page.status_code == 200 and b'data-what="export_record"' in page.content
    assert client_for(clinician).get(reverse("communications_register")).status_code == 403


def test_the_register_of_confidentiality_incidents(practice, practice_admin, client_for):
    admin = client_for(practice_admin)
    url = reverse("admin:patients_confidentialityincident_add")
    base = {
        "information": "Radiographies de 3 patients",
        "circumstances": "Clé USB perdue",
        "occurred_on": "2026-11-20",
        "learned_on": "2026-11-21",
        "persons_affected": "3",
        "measures": "Clés chiffrées obligatoires",
        "notice_details": "",
        "risk_assessment": "Images identifiées par nom",
    }
    refused = admin.post(url, {**base, "risk": "yes"})
    assert refused.status_code == 200  # the form again: the Commission must be notified
    assert not ConfidentialityIncident.objects.exists()
    done = admin.post(url, {**base, "risk": "yes", "cai_notified_on": "2026-11-22"})
    assert done.status_code == 302, done.content[:2000]
    incident = ConfidentialityIncident.objects.get()
    assert (incident.practice, incident.recorded_by) == (practice, practice_admin)
    assert AuditEvent.objects.filter(
        username=practice_admin.username, object_ref__startswith="POST /admin/"
    ).exists()
