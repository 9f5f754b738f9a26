"""The one test base: the fixtures every test folder (tests/, patients/, dicomnet/, worklist/)
shares, defined here or imported from the modules that hold the real processes and peers.

For every test (autouse):
- ``isolated_data``: its own data directory, spool and file storage under ``tmp_path``;
  nothing touches var/. Returns the data directory.
- ``english_by_default``: pages and messages in English (the French default is proven in
  patients/tests/test_i18n.py).
- ``fast_password_hashing``: PBKDF2 with one iteration (tests/fixtures.py); the hashes still
  work in the subprocesses, which use the real hashers.

The demo practice and its people:
- ``practice``: the demo practice (``seed_demo``): eight patients, four devices, a week of
  appointments and their worklist items; without the demo's radiographs (each test ingests
  the images it is about; tests/test_demo.py proves the radiographs).
- ``clinician``: the demo login (``clinician``, password ``nexrel-demo``), staff and in the
  "Clinicians" group (patients/roles.py), not a superuser.
- ``frontdesk``: the demo's ``frontdesk``, "Front desk" group: calendar, demographics, no image.
- ``practice_admin``: the demo's ``practiceadmin``, staff, "Practice admins" group: users,
  devices, settings.
- ``assistant``: a user of the demo practice without any admin right.
- ``admin_user`` (pytest-django's): a superuser, of no practice.
- ``client_for(user)``: a new test client, logged in as ``user``.
- ``clinician_client``: the demo clinician, logged in (the logged-in client of the tests).
  pytest-django's ``admin_client`` is the superuser's, ``client`` an anonymous one.
- ``other_practice``: practice B, which the demo's users must never see (``OtherPractice``).

Real processes and peers, imported from their modules; a test using them (or living in
tests/integration/ or tests/e2e/) is marked ``integration`` or ``e2e`` here, which is how
``make test-unit`` leaves it out:
- tests/fixtures.py: ``listener``, ``listener_factory`` (``dicom_listener`` subprocesses),
  ``worker`` (a django-q2 cluster), ``small_spool`` (the spool on a small tmpfs);
- tests/peers.py: ``postgres_server``, ``postgres_database``, ``postgres_own_server``,
  ``postgres_seeded_database``, ``redis_server``,
  ``s3_server``, ``s3_bucket``, ``s3_settings``, ``echo_peer`` (DCMTK storescp);
- tests/orthanc.py: ``orthanc``, ``orthanc_factory`` (with more configuration: plugins);
- tests/browser.py: ``web_server``, ``browser_page`` (Chromium through Playwright).

The suite runs on SQLite, and on PostgreSQL in ``make test-postgres`` (tests/pg_cluster.py
sets DATABASE_URL; the subprocesses above share the worker's database either way). A test
marked ``sqlite_only(reason)`` is about SQLite itself and is skipped on PostgreSQL. A test
that reaches the test database is marked ``database`` here: the PostgreSQL pass runs those
(the others would run exactly as they did on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import browser_page, web_server
from tests.fixtures import listener, listener_factory, small_spool, worker
from tests.orthanc import orthanc, orthanc_factory
from tests.peers import (
    echo_peer,
    postgres_database,
    postgres_own_server,
    postgres_seeded_database,
    postgres_seeded_template,
    postgres_server,
    redis_server,
    s3_bucket,
    s3_server,
    s3_settings,
)

if TYPE_CHECKING:
    from django.test import Client

    from dicomnet.models import DicomServer, RetrieveJob
    from patients.models import Patient, Practice, User

__all__ = [  # imported fixtures, for pytest to find here
    "browser_page",
    "echo_peer",
    "listener",
    "listener_factory",
    "orthanc",
    "orthanc_factory",
    "postgres_database",
    "postgres_own_server",
    "postgres_seeded_database",
    "postgres_seeded_template",
    "postgres_server",
    "redis_server",
    "s3_bucket",
    "s3_server",
    "s3_settings",
    "small_spool",
    "web_server",
    "worker",
]

ROOT = Path(__file__).resolve().parent

# A test using one of these is an integration (real peers or processes) or e2e test.
INTEGRATION_FIXTURES = {
    "listener",
    "listener_factory",
    "worker",
    "postgres_server",
    "postgres_database",
    "redis_server",
    "s3_server",
    "s3_bucket",
    "s3_settings",
    "echo_peer",
    "orthanc",
    "orthanc_factory",
}
E2E_FIXTURES = {"web_server", "browser_page"}
# pytest-django's: a test using one (or marked django_db) reaches the test database.
DATABASE_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    for item in items:
        sqlite_only = item.get_closest_marker("sqlite_only")
        if on_postgres and sqlite_only:
            reason = sqlite_only.args[0] if sqlite_only.args else "about SQLite itself"
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))
        names = set(getattr(item, "fixturenames", ()))
        path = Path(item.path).resolve()
        folder = path.relative_to(ROOT).parts[:2] if path.is_relative_to(ROOT) else ()
        if folder == ("tests", "integration") or names & INTEGRATION_FIXTURES:
            item.add_marker(pytest.mark.integration)
        if folder == ("tests", "e2e") or names & E2E_FIXTURES:
            item.add_marker(pytest.mark.e2e)
        if names & DATABASE_FIXTURES or item.get_closest_marker("django_db"):
            item.add_marker(pytest.mark.database)


# For every test ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_data(settings, tmp_path: Path) -> Path:
    """Each test gets its own spool and storage; nothing touches var/."""
    data = tmp_path / "data"
    settings.DATA_DIR = data
    settings.SPOOL_DIR = data / "spool"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(data / "storage"), "allow_overwrite": True},
        },
    }
    return data


@pytest.fixture(autouse=True)
def english_by_default(settings) -> None:
    """Tests read English text; the French default is proven in patients/tests/test_i18n.py."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """seed_demo sets the demo login's password; real PBKDF2 costs about a second each."""
    settings.PASSWORD_HASHERS = ["tests.fixtures.FastPBKDF2PasswordHasher"]


# The demo practice and its people -------------------------------------------------------------


@pytest.fixture
def practice(db) -> Practice:
    from nexrel.demo import seed_demo

    return seed_demo(images=False)


@pytest.fixture
def clinician(practice) -> User:
    from patients.models import User

    return User.objects.get(username="clinician")


@pytest.fixture
def frontdesk(practice) -> User:
    from patients.models import User

    return User.objects.get(username="frontdesk")


@pytest.fixture
def practice_admin(practice) -> User:
    from patients.models import User

    return User.objects.get(username="practiceadmin")


@pytest.fixture
def assistant(practice) -> User:
    from patients.models import User

    return User.objects.create_user("assistant", practice=practice, password="assistant-password-1")


@pytest.fixture
def client_for(db):
    """``client_for(user)``: a new test client with ``user`` logged in."""
    from django.test import Client

    def logged_in(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return logged_in


@pytest.fixture
def clinician_client(client_for, clinician) -> Client:
    return client_for(clinician)


@dataclass
class OtherPractice:
    practice: Practice
    patient: Patient
    user: User
    server: DicomServer
    job: RetrieveJob


@pytest.fixture
def other_practice(db) -> OtherPractice:
    """Practice B ("Clinique B", CLINIQUE-B): a patient with the chart number of the demo's
    Zoé Côté (1001, "Autre, Patiente"), its own user ``b-user`` (password ``b-password-1``,
    a clinician), a DICOM server "PACS B" (PACSB; find, move and get allowed) and a pending
    import job."""
    from django.contrib.auth.models import Group

    from dicomnet.models import DicomServer, RetrieveJob
    from patients.models import Patient, Practice, User
    from patients.roles import CLINICIAN

    practice = Practice.objects.create(name="Clinique B", ae_title="CLINIQUE-B")
    patient = Patient.objects.create(
        practice=practice, chart_number="1001", family_name="Autre", given_name="Patiente"
    )
    user = User.objects.create_user("b-user", practice=practice, password="b-password-1")
    user.groups.add(Group.objects.get(name=CLINICIAN))
    server = DicomServer.objects.create(
        practice=practice,
        name="PACS B",
        ae_title="PACSB",
        allow_find=True,
        allow_move=True,
        allow_get=True,
    )
    job = RetrieveJob.objects.create(
        practice=practice, server=server, patient=patient, study_instance_uids=["1.2.3"]
    )
    return OtherPractice(practice, patient, user, server, job)
