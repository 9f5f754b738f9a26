"""API keys, the Orthanc webhook (``POST /api/dental/dicom/receive``) and the fetch task.

The fetch runs against a small local HTTP server that plays Orthanc's
``GET /instances/{id}/file`` with basic authentication; the real Orthanc is exercised in
tests/integration/test_orthanc_frontend.py.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import logging
import threading
from collections.abc import Iterator

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django_q.models import OrmQ, Schedule
from rest_framework.test import APIClient

from dicomnet.ingest import apikeys, orthanc
from dicomnet.models import ApiKey, DicomInstance, DicomServer, OrthancNotification
from tests.dicom_samples import dicom_bytes

URL = "/api/dental/dicom/receive"
ORTHANC_ID = "6b9e1f3a-0c2d4e5f-8a7b6c5d-4e3f2a1b-0c9d8e7f"


@pytest.fixture
def key(practice) -> str:
    return apikeys.create_api_key(practice=practice, name="Orthanc")[1]


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def post(api: APIClient, body, *, key: str | None = None, header: str = "bearer"):
    headers = {}
    if key is not None and header == "bearer":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    elif key is not None:
        headers["HTTP_X_API_KEY"] = key
    return api.post(URL, body, format="json", **headers)


# API keys -----------------------------------------------------------------------------------


def test_create_stores_only_prefix_and_hash(practice):
    api_key, clear = apikeys.create_api_key(practice=practice, name="Orthanc")
    api_key.refresh_from_db()
    assert api_key.key_hash == hashlib.sha256(clear.encode()).hexdigest()
    assert clear.startswith(api_key.prefix) and len(api_key.prefix) == apikeys.PREFIX_LENGTH
    assert clear not in {api_key.name, api_key.prefix, api_key.key_hash}


def test_authenticate_records_use_and_refuses_wrong_or_revoked_keys(practice, key):
    api_key = apikeys.authenticate(key)
    assert api_key is not None and api_key.practice == practice
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None
    assert apikeys.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert apikeys.authenticate("") is None
    assert apikeys.revoke(api_key) is True
    assert apikeys.revoke(api_key) is False
    assert apikeys.authenticate(key) is None


# The webhook --------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [None, "nxk_not-a-real-key-at-all"])
def test_missing_or_bad_key_is_401(api, practice, sent):
    response = post(api, {"instance_id": ORTHANC_ID}, key=sent)
    assert response.status_code == 401
    assert not OrthancNotification.objects.exists()


def test_revoked_key_is_refused(api, practice, key):
    apikeys.revoke(apikeys.authenticate(key))
    response = post(api, {"instance_id": ORTHANC_ID}, key=key)
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or revoked API key"


def test_logged_in_user_without_key_is_refused(api, clinician):
    api.force_login(clinician)  # a REST framework client, logged in
    assert post(api, {"instance_id": ORTHANC_ID}).status_code in (401, 403)


def test_notification_is_recorded_once_and_fetch_queued_once(
    api, practice, key, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(api, {"instance_id": ORTHANC_ID, "remote_aet": "SIRONA"}, key=key)
    assert first.status_code == 202, first.content
    assert first.json()["queued"] is True
    with django_capture_on_commit_callbacks(execute=True):
        again = post(api, {"ID": ORTHANC_ID.upper(), "RemoteAET": "SIRONA"}, key=key, header="x")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    notification = OrthancNotification.objects.get()
    assert notification.practice == practice
    assert notification.server == DicomServer.objects.get(practice=practice, ae_title="SIRONA")
    assert OrmQ.objects.count() == 1


def test_same_instance_id_in_two_practices_is_two_notifications(api, practice, key, other_practice):
    other_key = apikeys.create_api_key(practice=other_practice.practice, name="Orthanc")[1]
    assert post(api, {"instance_id": ORTHANC_ID}, key=key).status_code == 202
    assert post(api, {"instance_id": ORTHANC_ID}, key=other_key).status_code == 202
    assert OrthancNotification.objects.filter(orthanc_instance_id=ORTHANC_ID).count() == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Orthanc's instance ID is required"),
        ({"instance_id": "../../etc/passwd"}, "not an Orthanc instance ID"),
        ({"instance_id": "x" * 65}, "no more than 64"),
    ],
)
def test_invalid_body_is_400_with_message(api, practice, key, body, message):
    response = post(api, body, key=key)
    assert response.status_code == 400
    assert message in str(response.json())
    assert not OrthancNotification.objects.exists()


def test_malformed_json_is_400(api, practice, key):
    response = api.post(
        URL, "{not json", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 400


# The fetch task ------------------------------------------------------------------------------


class FakeOrthanc(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    credentials = "nexrel:secret"

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="Orthanc"')
            self.end_headers()
            return
        parts = self.path.strip("/").split("/")
        data = self.files.get(parts[1]) if len(parts) == 3 and parts[2] == "file" else None
        if data is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_orthanc(settings) -> Iterator[dict[str, bytes]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeOrthanc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.ORTHANC_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.ORTHANC_USERNAME, settings.ORTHANC_PASSWORD = "nexrel", "secret"
    FakeOrthanc.files = {}
    yield FakeOrthanc.files
    server.shutdown()
    server.server_close()


def notify(practice, remote_aet: str = "CARESTREAM") -> OrthancNotification:
    return orthanc.record_notification(
        practice=practice, orthanc_instance_id=ORTHANC_ID, remote_aet=remote_aet
    )[0]


def test_fetch_ingests_the_instance_once(practice, fake_orthanc):
    fake_orthanc[ORTHANC_ID] = dicom_bytes(patient_id="1001", patient_name="Côté^Zoé")
    notification = notify(practice)
    assert orthanc.fetch_notification(notification.pk) == "fetched"
    notification.refresh_from_db()
    assert notification.status == OrthancNotification.Status.FETCHED
    instance = DicomInstance.objects.get()
    assert notification.instance == instance
    assert instance.calling_ae == "CARESTREAM"
    assert instance.practice == practice
    # A second run (the same task delivered twice) does nothing.
    assert orthanc.fetch_notification(notification.pk) == "already fetched or being fetched"
    assert DicomInstance.objects.count() == 1


def test_a_claimed_notification_is_not_fetched_by_a_second_worker(practice, fake_orthanc):
    notification = notify(practice)
    assert orthanc.claim(notification.pk) is True
    assert orthanc.claim(notification.pk) is False
    assert orthanc.fetch_notification(notification.pk) == "already fetched or being fetched"


def test_failed_fetch_is_retried_then_failed_with_reason(practice, fake_orthanc, settings, caplog):
    settings.ORTHANC_PASSWORD = "wrong"
    settings.NEXREL_TASK_MAX_ATTEMPTS = 2
    fake_orthanc[ORTHANC_ID] = dicom_bytes(patient_id="1001", patient_name="Côté^Zoé")
    notification = notify(practice)

    assert orthanc.fetch_notification(notification.pk).startswith("failed")
    notification.refresh_from_db()
    assert notification.status == OrthancNotification.Status.PENDING
    assert notification.attempts == 1
    assert "refused our credentials (HTTP 401)" in notification.error
    assert Schedule.objects.filter(func=orthanc.TASK, args=str((notification.pk,))).exists()

    with caplog.at_level(logging.ERROR, logger="dicomnet.ingest.orthanc"):
        orthanc.fetch_notification(notification.pk)
    notification.refresh_from_db()
    assert notification.status == OrthancNotification.Status.FAILED
    assert notification.attempts == 2
    assert "gave up after 2 attempts" in caplog.text
    assert not DicomInstance.objects.exists()

    # Orthanc resending it (or the admin's retry) starts a new round.
    settings.ORTHANC_PASSWORD = "secret"
    assert notify(practice) == notification
    notification.refresh_from_db()
    assert notification.status == OrthancNotification.Status.PENDING
    assert orthanc.fetch_notification(notification.pk) == "fetched"


def test_unknown_instance_reason(practice, fake_orthanc):
    notification = notify(practice)
    orthanc.fetch_notification(notification.pk)
    notification.refresh_from_db()
    assert f"has no instance {ORTHANC_ID}" in notification.error


# Admin --------------------------------------------------------------------------------------


def test_admin_creates_a_key_shown_once_and_revokes_it(client_for, practice_admin, practice):
    admin_client = client_for(practice_admin)  # API keys are the practice admin's
    response = admin_client.post(reverse("admin:dicomnet_apikey_add"), {"name": "Orthanc"})
    assert response.status_code == 200
    api_key = ApiKey.objects.get(practice=practice)
    clear = response.context["clear_key"]
    assert clear.encode() in response.content
    assert apikeys.authenticate(clear) == api_key
    listing = admin_client.get(reverse("admin:dicomnet_apikey_changelist"))
    assert clear.encode() not in listing.content and api_key.prefix.encode() in listing.content

    admin_client.post(
        reverse("admin:dicomnet_apikey_changelist"),
        {"action": "revoke_keys", ACTION_CHECKBOX_NAME: [api_key.pk]},
    )
    assert apikeys.authenticate(clear) is None


def test_admin_lists_failed_notifications_with_their_error(client_for, practice_admin, practice):
    admin_client = client_for(practice_admin)  # API keys are the practice admin's
    OrthancNotification.objects.create(
        practice=practice,
        orthanc_instance_id=ORTHANC_ID,
        status=OrthancNotification.Status.FAILED,
        error="FetchError: cannot reach Orthanc",
    )
    response = admin_client.get(reverse("admin:dicomnet_orthancnotification_changelist"))
    assert b"cannot reach Orthanc" in response.content


def test_webhook_is_in_the_openapi_schema(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/dental/dicom/receive"]["post"]
    assert operation["security"] == [{"apiKey": []}]
    assert {"200", "202"} <= set(operation["responses"])
