"""Every route is checked for role and practice (issue 9, patients/roles.py).

1. The walk: every route of ``urlpatterns`` carries the mark of a role check
   (``nexrel_access``, set by ``patients.decorators.role_required``, DICOMweb's
   ``session_practice(...)``, the viewer API's ``_api``, or a DRF view's ``nexrel_access``
   with ``HasRole`` among its permission classes), or is listed in ``UNCHECKED`` with why.
2. The requests: every route, with real objects of the demo practice, as each role and as a
   clinician of another practice: 403 when the role lacks a marked permission, never 403 (nor
   401, 404, 5xx) when it holds them, and 404 (or an empty answer) for the other practice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from dicomnet.api.views import HasRole
from dicomnet.models import DicomServer, Mount, RetrieveJob
from dicomnet.viewer import annotations
from patients import roles
from patients.models import Appointment, Notification
from tests.dicom_samples import ingest_dataset, intraoral

# Routes without a role check, each with its reason. A new route does not belong here.
UNCHECKED = {
    "login": "the login page: before any role",
    "logout": "logging out: any session, or none",
    "set_language": "Django's i18n view: a cookie, no data",
    "api_schema": "the OpenAPI schema: DRF's IsAuthenticated, no practice data",
    "api_dicom_receive": "devices with an API key of the practice (HasApiKey), not a user",
    "metrics": "Prometheus, with METRICS_TOKEN (nexrel/ops.py): counts, no patient data",
    "health": "load balancers and monitors: up or down, no patient data",
}
UNCHECKED_NAMESPACES = {"admin": "Django admin: staff permissions, scoped by admin_scoping"}


def walk(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    """(route, pattern) for every URL pattern, through every include."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace in UNCHECKED_NAMESPACES:
                continue
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), entry.namespace or "")
        else:
            yield prefix + str(entry.pattern), entry


def access_of(callback: Callable[..., Any]) -> tuple[str, ...] | None:
    """The permissions the view checks, from its mark; None for a view with no role check."""
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None and hasattr(cls, "permission_classes"):  # DRF
        if not any(issubclass(p, HasRole) for p in cls.permission_classes):
            return None
        return getattr(cls, "nexrel_access", None)
    return getattr(callback, "nexrel_access", None)


def routes() -> list[tuple[str, URLPattern, tuple[str, ...]]]:
    found = []
    for route, pattern in walk():
        access = access_of(pattern.callback)
        if access is not None:
            found.append((route, pattern, access))
    return found


def test_every_route_is_checked_for_role_and_practice():
    unmarked = [
        f"{pattern.name or '(unnamed)'} ({route})"
        for route, pattern in walk()
        if pattern.name not in UNCHECKED and access_of(pattern.callback) is None
    ]
    assert not unmarked, (
        "routes without a role check; decorate the view with "
        "@role_required(roles.X) (patients/decorators.py), or give a DRF view "
        "nexrel_access = (roles.X,) on a PracticeAPIView: " + ", ".join(unmarked)
    )
    assert len(routes()) > 30  # the walk reaches the includes


def test_the_marks_name_real_permissions(db):
    known = set().union(*(roles.permissions_of(r) for r in roles.ROLES))
    for _route, pattern, access in routes():
        assert set(access) <= known, f"{pattern.name}: {set(access) - known}"


# The requests --------------------------------------------------------------------------------


@pytest.fixture
def world(practice, clinician):
    """Real objects of the demo practice for every route's arguments."""
    xray = ingest_dataset(practice, intraoral(PixelSpacing=[0.1, 0.1]))
    assert xray.thumbnail_key and xray.preview_key
    server = DicomServer.objects.get(practice=practice, ae_title="CARESTREAM")
    patient = practice.patients.order_by("pk").first()
    job = RetrieveJob.objects.create(
        practice=practice, server=server, patient=patient, study_instance_uids=["1.2.3"]
    )
    note = annotations.create_annotation(xray, author=clinician, kind="arrow", label="a")
    appointment = Appointment.objects.for_practice(practice).order_by("pk").first()
    assert appointment is not None and xray.study is not None
    by_route = {
        "patient_detail": patient,
        "record_export": patient,
        "qr_find": patient,
        "qr_import": patient,
        "dicom_server_edit": server,
        "dicom_server_test": server,
        "instance_image": xray,
        "ops_retry": xray,  # POST only: a GET is 405 once the role passes
        "viewer_annotation": note,
        "notification_read": Notification.objects.create(practice=practice, message="a study"),
    }
    by_route["api_dental_study"] = xray.study
    mount = Mount.objects.get(study=xray.study)  # an intra-oral image gets a free mount
    by_prefix = {
        "qr_job": job,
        "api_dicom_job": job,
        "appointment_": appointment,
        "mount_": mount,
        "study_": xray.study,
    }
    by_prefix |= {
        "api_dental_patient": patient,
        "api_dental_instance": xray,
        "api_dental_notification": by_route["notification_read"],
    }
    values = {
        "study": xray.study.study_instance_uid,
        "study_uid": xray.study.study_instance_uid,
        "series": xray.series.series_instance_uid,
        "instance": xray.sop_instance_uid,
        "sop_instance_uid": xray.sop_instance_uid,
        "kind": "thumbnail",
        "frame_list": "1",
        "path": "7FE00010",
        "batch": uuid.uuid4(),  # review_undo: POST only, a GET is 405 once the role passes
    }

    def url(pattern: URLPattern) -> tuple[str, bool]:
        """The route's URL with the practice's objects; and whether it names one."""
        kwargs: dict[str, Any] = {}
        for name in pattern.pattern.regex.groupindex:
            if name == "pk":
                obj = by_route.get(pattern.name or "") or next(
                    (o for p, o in by_prefix.items() if (pattern.name or "").startswith(p)), None
                )
                assert obj is not None, f"{pattern.name}: add its object to the world fixture"
                kwargs["pk"] = obj.pk
            else:
                assert name in values, f"{pattern.name}: add a value for <{name}>"
                kwargs[name] = values[name]
        return reverse(pattern.name, kwargs=kwargs), bool(kwargs)

    return url


ROLE_USERS = ["clinician", "frontdesk", "practice_admin"]


@pytest.mark.parametrize("role_user", ROLE_USERS)
def test_each_route_answers_each_role_by_its_permissions(request, role_user, world, client_for):
    user = request.getfixturevalue(role_user)
    client = client_for(user)
    wrong = []
    for _route, pattern, access in routes():
        url, _ = world(pattern)
        response = client.get(url)
        allowed = user.has_perms(access)
        if not allowed and response.status_code != 403:
            wrong.append(f"{pattern.name}: {response.status_code}, expected 403")
        if allowed and (response.status_code in (401, 403, 404) or response.status_code >= 500):
            wrong.append(f"{pattern.name}: {response.status_code}, expected an answer")
        if response.status_code == 403 and url.startswith(("/dicomweb/", "/api/", "/viewer/api/")):
            if response["Content-Type"] != "application/json":
                wrong.append(f"{pattern.name}: a 403 of an API is JSON")
        elif response.status_code == 403 and b'id="error-403"' not in response.content:
            wrong.append(f"{pattern.name}: a page's 403 is the friendly page")
    assert not wrong, "\n".join(wrong)


def test_another_practices_people_find_nothing(world, other_practice, client_for):
    """Practice B's clinician and admin, on the demo practice's objects: 404 (or an empty
    search), once their role passes; 403 before that."""
    from patients.models import User

    other_practice.user.groups.add(Group.objects.get(name=roles.CLINICIAN))
    admin = User.objects.create_user("b-admin", practice=other_practice.practice)
    admin.groups.add(Group.objects.get(name=roles.PRACTICE_ADMIN))
    wrong = []
    for user in (other_practice.user, admin):
        client = client_for(user)
        for _route, pattern, access in routes():
            url, names_object = world(pattern)
            status = client.get(url).status_code
            if not user.has_perms(access):
                expected: tuple[int, ...] = (403,)
            elif names_object:
                expected = (404, 204, 405)  # 204: a search of another practice's study
            else:
                expected = (200, 204, 302, 400, 405)
            if status not in expected:
                wrong.append(f"{user}: {pattern.name}: {status}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_the_roles_table(practice, clinician, frontdesk, practice_admin):
    table = {
        roles.VIEW_IMAGES: (True, False, False),
        roles.USE_VIEWER: (True, False, False),
        roles.WORK_REVIEW_QUEUE: (True, False, False),
        roles.VIEW_REVIEW_QUEUE: (True, True, False),
        roles.VIEW_APPOINTMENT: (True, True, False),
        roles.VIEW_PATIENT: (True, True, True),  # the admin: demographics, for the export
        roles.MANAGE_DEVICES: (False, False, True),
        roles.VIEW_REFUSED_ASSOCIATIONS: (False, False, True),
        roles.EXPORT_RECORD: (True, False, True),
        "patients.add_user": (False, False, True),
        "dicomnet.change_dicomserver": (False, False, True),
    }
    for perm, expected in table.items():
        got = tuple(u.has_perm(perm) for u in (clinician, frontdesk, practice_admin))
        assert got == expected, perm
    assert not any(u.is_superuser for u in (clinician, frontdesk, practice_admin))


def test_the_demo_has_a_second_practice_of_its_own(practice):
    from patients.models import User

    clinician2 = User.objects.get(username="clinician2")
    assert clinician2.practice != practice and clinician2.has_perm(roles.VIEW_IMAGES)
    assert clinician2.practice.patients.exists()
    assert clinician2.check_password("nexrel-demo")


def test_a_token_acts_with_its_users_role(world, frontdesk, clinician, client):
    from patients.tokens import create_token

    search = reverse("dicomweb_studies")
    _, desk = create_token(frontdesk, "desk")
    _, clin = create_token(clinician, "clin")
    assert client.get(search, HTTP_AUTHORIZATION=f"Bearer {desk}").status_code == 403
    assert client.get(search, HTTP_AUTHORIZATION=f"Bearer {clin}").status_code == 200
