"""DICOMweb's authentication: ``Authorization: Bearer <token>`` (patients/tokens.py) beside
the session. A token acts as its user in its user's practice (another practice's study is
404, a search finds nothing); a bad token is 401 ``invalid_token`` (RFC 6750); without
credentials 401 with ``WWW-Authenticate``; a token's STOW-RS needs no CSRF token, a
session's does; a token's use is in the access log as the session's is."""

from __future__ import annotations

import pytest
from django.test import Client

from dicomnet.dicomweb.tests.test_stow import CONTENT_TYPE, body_of, uids
from dicomnet.models import DicomInstance
from patients import tokens
from patients.models import AccessLog
from tests.dicom_samples import dicom_bytes, ingest_processed

CHALLENGE = 'Bearer realm="Nexrel DICOMweb"'
INVALID = 'Bearer realm="Nexrel DICOMweb", error="invalid_token"'
MULTIPART = 'multipart/related; type="application/dicom"'


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def csrf_client() -> Client:
    """An anonymous client that enforces CSRF, as a real server does."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def ours(practice):
    return ingest_processed(practice, patient_id="1001", patient_name="Côté^Zoé")


@pytest.fixture
def theirs(other_practice):
    return ingest_processed(other_practice.practice, patient_id="1001", patient_name="Autre^B")


def test_a_token_searches_retrieves_and_is_in_the_access_log(csrf_client, clinician, ours):
    _, raw = tokens.create_token(clinician, "viewer")
    study = ours.study.study_instance_uid
    found = csrf_client.get("/dicomweb/studies", **bearer(raw))
    assert found.status_code == 200
    assert [s["0020000D"]["Value"] for s in found.json()] == [[study]]
    retrieved = csrf_client.get(f"/dicomweb/studies/{study}", HTTP_ACCEPT=MULTIPART, **bearer(raw))
    assert retrieved.status_code == 200
    assert b"".join(retrieved.streaming_content).count(ours.sop_instance_uid.encode()) >= 1
    metadata = csrf_client.get(f"/dicomweb/studies/{study}/metadata", **bearer(raw))
    assert metadata.status_code == 200
    logged = AccessLog.objects.filter(user=clinician).order_by("pk")
    assert [(log.action, log.patient) for log in logged] == [
        ("dicomweb_search", ours.study.patient),
        ("dicomweb_retrieve", ours.study.patient),
        ("dicomweb_retrieve", ours.study.patient),
    ]
    assert logged[1].object_ref == f"wado:studies/{study}"


def test_another_practices_token_finds_nothing_and_gets_404(
    csrf_client, other_practice, ours, theirs
):
    _, raw = tokens.create_token(other_practice.user, "B's viewer")
    study = ours.study.study_instance_uid
    search = csrf_client.get("/dicomweb/studies", {"StudyInstanceUID": study}, **bearer(raw))
    assert search.status_code == 204
    for url in (f"/dicomweb/studies/{study}", f"/dicomweb/studies/{study}/metadata"):
        response = csrf_client.get(url, **bearer(raw))
        assert response.status_code == 404, url
        assert "detail" in response.json()
    # and its own study is there
    own = csrf_client.get(f"/dicomweb/studies/{theirs.study.study_instance_uid}", **bearer(raw))
    assert own.status_code == 200


@pytest.mark.parametrize("state", ["revoked", "expired", "unknown", "malformed", "empty"])
def test_a_bad_token_is_401_invalid_token(csrf_client, clinician, clinician_client, ours, state):
    token, raw = tokens.create_token(clinician, "viewer")
    if state == "revoked":
        tokens.revoke(token)
    elif state == "expired":
        token.expires_at = token.created_at
        token.save()
    elif state == "unknown":
        raw = tokens.new_token()
    elif state == "malformed":
        raw = "not one of ours"
    else:
        raw = ""
    study = ours.study.study_instance_uid
    for url in ("/dicomweb/studies", f"/dicomweb/studies/{study}"):
        response = csrf_client.get(url, **bearer(raw))
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == INVALID
        assert "token" in response.json()["detail"]
        # a bad token is never made up for by the session
        assert clinician_client.get(url, **bearer(raw)).status_code == 401
    assert not AccessLog.objects.exists()


def test_without_credentials_401_with_www_authenticate(csrf_client, ours):
    study = ours.study.study_instance_uid
    for method, url in (
        ("GET", "/dicomweb/studies"),
        ("GET", f"/dicomweb/studies/{study}"),
        ("GET", f"/dicomweb/studies/{study}/metadata"),
        ("POST", "/dicomweb/studies"),
    ):
        response = csrf_client.generic(method, url, b"", content_type=CONTENT_TYPE)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == CHALLENGE
        assert response.json()["detail"]
    basic = csrf_client.get("/dicomweb/studies", HTTP_AUTHORIZATION="Basic Y2xpbmljaWFuOng=")
    assert basic.status_code == 401 and basic["WWW-Authenticate"] == CHALLENGE


def test_a_user_of_no_practice_is_403(csrf_client, admin_user, practice):
    _, raw = tokens.create_token(admin_user, "superuser's")
    response = csrf_client.get("/dicomweb/studies", **bearer(raw))
    assert response.status_code == 403


def test_a_tokens_stow_needs_no_csrf_token(csrf_client, clinician, practice):
    _, raw = tokens.create_token(clinician, "uploader")
    data = dicom_bytes(patient_id="1001", patient_name="Côté^Zoé")
    response = csrf_client.generic(
        "POST", "/dicomweb/studies", body_of(data), content_type=CONTENT_TYPE, **bearer(raw)
    )
    assert response.status_code == 200, response.content
    study, _, sop, _ = uids(data)
    assert DicomInstance.objects.for_practice(practice).filter(sop_instance_uid=sop).exists()
    [log] = AccessLog.objects.filter(action="dicomweb_store")
    assert (log.user, log.object_ref) == (clinician, f"stow:{study}")
    on_path = csrf_client.generic(
        "POST", f"/dicomweb/studies/{study}", body_of(data), content_type=CONTENT_TYPE,
        **bearer(raw),
    )  # fmt: skip
    assert on_path.status_code == 200


def test_a_sessions_stow_without_csrf_is_refused(clinician, practice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(clinician)
    data = dicom_bytes(patient_id="1001", patient_name="Côté^Zoé")
    study = uids(data)[0]
    for url in ("/dicomweb/studies", f"/dicomweb/studies/{study}"):
        response = client.generic("POST", url, body_of(data), content_type=CONTENT_TYPE)
        assert response.status_code == 403, url
        assert "CSRF" in response.json()["detail"]
    assert not DicomInstance.objects.exists()
    client.cookies["csrftoken"] = secret = "N" * 32
    response = client.generic(
        "POST", "/dicomweb/studies", body_of(data), content_type=CONTENT_TYPE,
        HTTP_X_CSRFTOKEN=secret,
    )  # fmt: skip
    assert response.status_code == 200, response.content
    # a GET of the session needs no CSRF token (204: the stored part is not processed yet)
    assert client.get("/dicomweb/studies").status_code == 204
