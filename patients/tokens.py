"""Bearer tokens of users, for DICOMweb clients (``Authorization: Bearer nxr_…``).

A token is ``nxr_`` and 32 random bytes (URL-safe base64): shown once, when created; only
its first characters (``prefix``, to recognise it in lists and to revoke it by name) and
its SHA-256 are stored. A token is looked up by its prefix and checked by a constant-time
comparison of the hashes. It authenticates its user while the token is neither revoked nor
expired and the user is active. Its last use is written at most once a minute
(``LAST_USED_EVERY``), not on every request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.db.models import Q
from django.utils import timezone

from patients.models import ApiToken, User

TOKEN_PREFIX = "nxr_"
PREFIX_LENGTH = 12  # "nxr_" and 8 random characters
MAX_TOKEN_LENGTH = 200  # longer is never one of ours: not even hashed
LAST_USED_EVERY = dt.timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(
    user: User, name: str, *, expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token of ``user``; returns the row and the token itself (never stored)."""
    raw = new_token()
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[:PREFIX_LENGTH],
        token_hash=hash_token(raw),
        expires_at=expires_at,
    )
    return token, raw


def find_token(raw: str) -> ApiToken | None:
    """The usable token ``raw`` is (not revoked, not expired, its user active), or None."""
    if not raw.startswith(TOKEN_PREFIX) or not PREFIX_LENGTH < len(raw) <= MAX_TOKEN_LENGTH:
        return None
    digest = hash_token(raw)
    now = timezone.now()
    candidates = (
        ApiToken.objects.filter(prefix=raw[:PREFIX_LENGTH], revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .filter(user__is_active=True)
        .select_related("user", "user__practice")
    )
    match = None
    for candidate in candidates:
        if hmac.compare_digest(candidate.token_hash, digest):
            match = candidate
    return match


def authenticate_token(raw: str) -> User | None:
    """The user of the token ``raw``, or None (unknown, malformed, revoked or expired).

    1. Find the usable token by its prefix, compare the hashes in constant time.
    2. Record its use, unless it was recorded less than ``LAST_USED_EVERY`` ago: a
       conditional update, so concurrent requests write once between them.
    """
    token = find_token(raw)
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
    return token.user


def revoke(token: ApiToken) -> bool:
    """Revoke ``token`` (from its next request on); False if it already was."""
    now = timezone.now()
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if updated:
        token.revoked_at = now
    return bool(updated)


def tokens_named(ref: str) -> list[ApiToken]:
    """The tokens ``ref`` names: an id, a prefix (``nxr_AbCd1234``), or a whole token."""
    ref = ref.strip()
    if ref.isdigit():
        return list(ApiToken.objects.filter(pk=int(ref)).select_related("user"))
    tokens = ApiToken.objects.select_related("user")
    if not ref.startswith(TOKEN_PREFIX) or len(ref) < PREFIX_LENGTH:
        return []
    if len(ref) == PREFIX_LENGTH:
        return list(tokens.filter(prefix=ref))
    return list(tokens.filter(token_hash=hash_token(ref)))
