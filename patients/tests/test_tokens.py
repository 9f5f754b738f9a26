"""Bearer tokens (patients/tokens.py): created and shown once, stored hashed, found by
prefix and hash, revoked, expired, their last use written at most once a minute; the
``api_token`` command; the admin (list, create shown once, revoke, scoped to the practice)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from patients import tokens
from patients.models import ApiToken


def test_create_stores_only_the_hash_and_a_prefix(clinician):
    token, raw = tokens.create_token(clinician, "PACS viewer")
    assert raw.startswith("nxr_") and len(raw) > 40
    token.refresh_from_db()
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert token.prefix == raw[:12]
    assert raw not in {getattr(token, f.attname) for f in ApiToken._meta.fields}
    assert tokens.authenticate_token(raw) == clinician
    other_token, other_raw = tokens.create_token(clinician, "another")
    assert other_raw != raw and other_token.prefix != token.prefix


@pytest.mark.parametrize(
    "raw",
    ["", "nxr_", "Bearer", "nxr_short", "not-a-token-at-all-but-long-enough", "nxr_" + "x" * 300],
)
def test_unknown_or_malformed_is_none(clinician, raw):
    tokens.create_token(clinician, "one")
    assert tokens.authenticate_token(raw) is None


def test_the_same_prefix_with_another_secret_is_none(clinician):
    token, raw = tokens.create_token(clinician, "one")
    forged = raw[:12] + ("A" if raw[12] != "A" else "B") + raw[13:]
    assert tokens.authenticate_token(forged) is None


def test_revoked_expired_or_inactive_user_is_none(clinician):
    token, raw = tokens.create_token(clinician, "one")
    assert tokens.revoke(token) is True
    assert tokens.revoke(token) is False  # already
    assert tokens.authenticate_token(raw) is None
    assert not ApiToken.objects.get(pk=token.pk).is_active

    soon = timezone.now() + dt.timedelta(hours=1)
    expiring, raw = tokens.create_token(clinician, "two", expires_at=soon)
    assert expiring.is_active and tokens.authenticate_token(raw) == clinician
    ApiToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now())
    assert tokens.authenticate_token(raw) is None

    _, raw = tokens.create_token(clinician, "three")
    clinician.is_active = False
    clinician.save()
    assert tokens.authenticate_token(raw) is None


def test_last_use_is_written_at_most_once_a_minute(clinician, django_assert_num_queries):
    token, raw = tokens.create_token(clinician, "one")
    assert token.last_used_at is None
    with django_assert_num_queries(2):  # the lookup, the update
        assert tokens.authenticate_token(raw) == clinician
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the lookup only
        assert tokens.authenticate_token(raw) == clinician
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - dt.timedelta(minutes=2))
    tokens.authenticate_token(raw)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_tokens_named_by_id_prefix_or_token(clinician):
    token, raw = tokens.create_token(clinician, "one")
    tokens.create_token(clinician, "two")
    assert tokens.tokens_named(str(token.pk)) == [token]
    assert tokens.tokens_named(token.prefix) == [token]
    assert tokens.tokens_named(raw) == [token]
    assert tokens.tokens_named("nxr_") == []
    assert tokens.tokens_named("anything") == []


# ---------------------------------------------------------------------- the command


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("api_token", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_token_alone_on_the_last_line(clinician):
    output = run("create", "--user", "clinician", "--name", "Orthanc")
    raw = output.strip().splitlines()[-1]
    assert raw.startswith("nxr_") and " " not in raw
    assert tokens.authenticate_token(raw) == clinician
    token = ApiToken.objects.get()
    assert (token.name, token.user, token.expires_at) == ("Orthanc", clinician, None)
    assert token.token_hash not in output

    output = run("create", "--user", "clinician", "--days", "30")
    expiring = ApiToken.objects.get(prefix=output.strip().splitlines()[-1][:12])
    assert expiring.expires_at is not None
    assert expiring.expires_at - timezone.now() > dt.timedelta(days=29)


def test_create_refuses_unknown_users_and_users_of_no_practice(practice, admin_user):
    with pytest.raises(CommandError, match="no user 'nobody'"):
        run("create", "--user", "nobody")
    with pytest.raises(CommandError, match="belongs to no practice"):
        run("create", "--user", admin_user.username)
    assert not ApiToken.objects.exists()


def test_list_and_revoke(clinician, assistant):
    mine, raw = tokens.create_token(clinician, "viewer")
    theirs, _ = tokens.create_token(assistant, "script")
    listing = run("list")
    assert mine.prefix in listing and theirs.prefix in listing
    assert raw not in listing and mine.token_hash not in listing
    only = run("list", "--user", "assistant")
    assert theirs.prefix in only and mine.prefix not in only

    assert "revoked" in run("revoke", mine.prefix)
    assert tokens.authenticate_token(raw) is None
    assert "already revoked" in run("revoke", str(mine.pk))
    assert "revoked" in run("list", "--user", "clinician")
    with pytest.raises(CommandError, match="no token"):
        run("revoke", "nxr_nothing0")
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


# ---------------------------------------------------------------------- the admin


@pytest.fixture
def clinician(clinician):
    """The demo clinician, in the "Practice admins" group too: the tokens' admin is theirs."""
    from django.contrib.auth.models import Group

    clinician.groups.add(Group.objects.get(name="Practice admins"))
    return clinician


def test_admin_creates_shows_once_lists_and_revokes(clinician_client, clinician, assistant):
    response = clinician_client.post(
        "/admin/patients/apitoken/add/", {"user": assistant.pk, "name": "Script"}
    )
    assert response.status_code == 200, response.content[:2000]
    token = ApiToken.objects.get()
    page = response.content.decode()
    [raw] = [w for w in page.replace("<", " <").replace(">", "> ").split() if w.startswith("nxr_")
             and len(w) > 20]  # fmt: skip
    assert tokens.authenticate_token(raw) == assistant
    assert token.prefix == raw[:12]

    listing = clinician_client.get("/admin/patients/apitoken/").content.decode()
    assert token.prefix in listing
    assert raw not in listing and token.token_hash not in listing
    change = clinician_client.get(f"/admin/patients/apitoken/{token.pk}/change/").content.decode()
    assert raw not in change and token.token_hash not in change

    response = clinician_client.post(
        "/admin/patients/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert ApiToken.objects.get().revoked_at is not None
    assert tokens.authenticate_token(raw) is None


def test_admin_of_a_practice_sees_only_its_users_tokens(clinician_client, other_practice):
    theirs, _ = tokens.create_token(other_practice.user, "B's")
    assert theirs.prefix not in clinician_client.get("/admin/patients/apitoken/").content.decode()
    change = clinician_client.get(f"/admin/patients/apitoken/{theirs.pk}/change/")
    assert change.status_code == 302  # the admin's "does not exist" redirect
    add = clinician_client.post(
        "/admin/patients/apitoken/add/", {"user": other_practice.user.pk, "name": "x"}
    )
    assert add.status_code == 200 and b"Select a valid choice" in add.content
    assert ApiToken.objects.count() == 1
