"""API keys for machine callers (Orthanc's webhook).

A key is shown once, when created; only its first characters (to recognise it in lists) and
its SHA-256 are stored. A key is looked up by its prefix and checked by a constant-time
comparison of the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.utils import timezone

from dicomnet.models import ApiKey
from patients.models import Practice

KEY_PREFIX = "nxk_"
PREFIX_LENGTH = 12


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_api_key(*, practice: Practice, name: str) -> tuple[ApiKey, str]:
    """Create a key for ``practice``; returns the row and the clear key (never stored)."""
    key = new_key()
    api_key = ApiKey.objects.create(
        practice=practice, name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key)
    )
    return api_key, key


def authenticate(key: str) -> ApiKey | None:
    """The active key matching ``key`` (its last use recorded), or None."""
    if not key or len(key) < PREFIX_LENGTH or len(key) > 200:
        return None
    digest = hash_key(key)
    match = None
    for candidate in ApiKey.objects.filter(prefix=key[:PREFIX_LENGTH], revoked_at__isnull=True):
        if hmac.compare_digest(candidate.key_hash, digest):
            match = candidate
    if match is None:
        return None
    match.last_used_at = timezone.now()
    ApiKey.objects.filter(pk=match.pk).update(last_used_at=match.last_used_at)
    return match


def revoke(api_key: ApiKey) -> bool:
    """Revoke ``api_key``; False if it already was."""
    now = timezone.now()
    updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if updated:
        api_key.revoked_at = now
    return bool(updated)
