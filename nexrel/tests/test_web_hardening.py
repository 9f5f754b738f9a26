"""Web hardening (issue 10 §4) and residency (§5): login lockout (django-axes), the session's
idle timeout, the security headers, `check --deploy` with production settings, and S3 kept in
Canada and encrypted."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from django.urls import reverse

from nexrel.idle import LAST_ACTIVITY
from nexrel.proxy import forwarded_client_address
from nexrel.residency import check_s3_residency
from patients.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/accounts/login/"


def _login(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def test_failed_logins_lock_the_user_out_from_that_address(practice):
    client = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "clinician", "wrong-password").status_code == 200
    locked = _login(client, "clinician", "wrong-password")
    assert locked.status_code == 429
    assert b'id="locked-out"' in locked.content
    # Locked out: even the right password is refused now.
    assert _login(client, "clinician", "nexrel-demo").status_code == 429
    # Another person, or the same one from another address, is not locked out.
    assert _login(client, "frontdesk", "nexrel-demo").status_code == 302
    elsewhere = Client(REMOTE_ADDR="198.51.100.2")
    assert _login(elsewhere, "clinician", "nexrel-demo").status_code == 302


def test_a_client_cannot_dodge_the_lockout_with_x_forwarded_for(practice):
    for n in range(settings.AXES_FAILURE_LIMIT):
        client = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        _login(client, "clinician", "wrong-password")
    client = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.0.0.99")
    assert _login(client, "clinician", "nexrel-demo").status_code == 429


def test_behind_the_proxy_the_address_is_the_one_nginx_appended(practice, settings):
    """nginx appends the address that connected to it (``$proxy_add_x_forwarded_for``):
    whatever a client puts before it neither dodges the lockout nor lands in the audit."""
    settings.AXES_CLIENT_IP_CALLABLE = "nexrel.proxy.forwarded_client_address"
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        client = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 203.0.113.20")
        assert _login(client, "clinician", "wrong-password").status_code == 200
    client = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.20")
    assert _login(client, "clinician", "wrong-password").status_code == 429
    forged = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.0.0.99, 203.0.113.20")
    assert _login(forged, "clinician", "nexrel-demo").status_code == 429
    # Another address (nginx's last entry) is not locked out, whatever it claims before it.
    other = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.20, 203.0.113.21")
    assert _login(other, "clinician", "nexrel-demo").status_code == 302
    failed = AuditEvent.objects.filter(what="login_failed").values_list("address", flat=True)
    assert set(failed) == {"203.0.113.20"}


def test_the_forwarded_address_falls_back_to_the_socket():
    factory = RequestFactory(REMOTE_ADDR="192.0.2.4")
    assert forwarded_client_address(factory.get("/")) == "192.0.2.4"
    garbled = factory.get("/", HTTP_X_FORWARDED_FOR="203.0.113.5, not-an-address")
    assert forwarded_client_address(garbled) == "192.0.2.4"
    v6 = factory.get("/", HTTP_X_FORWARDED_FOR="203.0.113.5,2001:db8::1 ")
    assert forwarded_client_address(v6) == "2001:db8::1"


def test_a_success_resets_the_count(practice):
    client = Client(REMOTE_ADDR="203.0.113.8")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(client, "clinician", "wrong-password")
    assert _login(client, "clinician", "nexrel-demo").status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "clinician", "wrong-password").status_code == 200


def test_an_idle_session_is_signed_out_and_polling_does_not_keep_it(clinician_client):
    home = reverse("home")
    assert clinician_client.get(home).status_code == 200
    session = clinician_client.session
    started = session[LAST_ACTIVITY]
    # The bell polls: that is not the person's own activity.
    session[LAST_ACTIVITY] = started - 120
    session.save()
    assert clinician_client.get(reverse("notification_bell")).status_code == 200
    assert clinician_client.session[LAST_ACTIVITY] == started - 120
    # A page they open is.
    assert clinician_client.get(home).status_code == 200
    assert clinician_client.session[LAST_ACTIVITY] > started - 60
    # Idle for longer than the timeout: signed out, sent to the login page.
    session = clinician_client.session
    session[LAST_ACTIVITY] = time.time() - settings.SESSION_IDLE_SECONDS - 5
    session.save()
    response = clinician_client.get(home)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert clinician_client.get(home).status_code == 302  # the session is gone


def test_security_headers(clinician_client):
    response = clinician_client.get(reverse("home"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "'unsafe-eval' " not in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("NEXREL_", "DJANGO"))}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _production(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "NEXREL_PRODUCTION": "true",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "nexrel.example.ca",
        "NEXREL_DATA_DIR": str(tmp_path),
        **extra,
    }


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    done = _manage("check", "--deploy", "--fail-level", "WARNING", **_production(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize(
    ("region", "sse", "why"),
    [("us-east-1", "AES256", "outside Canada"), ("ca-central-1", "none", "encrypted at rest")],
)
def test_production_refuses_s3_outside_canada_or_unencrypted(tmp_path, region, sse, why):
    env = _production(
        tmp_path, NEXREL_S3_BUCKET="nexrel-images", NEXREL_S3_REGION=region, NEXREL_S3_SSE=sse
    )
    done = _manage("check", **env)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and why in done.stderr


def test_residency_rule():
    for region in ("ca-central-1", "ca-west-1"):
        for sse in ("AES256", "aws:kms"):
            check_s3_residency(region, sse)
    for region, sse in (("us-east-1", "AES256"), ("eu-west-3", "aws:kms"), ("ca-central-1", "")):
        with pytest.raises(ImproperlyConfigured):
            check_s3_residency(region, sse)
