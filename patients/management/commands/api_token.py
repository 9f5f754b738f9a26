"""``manage.py api_token create --user <username> [--name ...] [--days N]``,
``api_token list [--user <username>]``, ``api_token revoke <prefix|id>``.

``create`` prints the token alone on its last line (shown once: only its hash is kept),
so a script can take it with ``tail -n 1``."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from patients import tokens
from patients.models import ApiToken, User


class Command(BaseCommand):
    help = "Create, list and revoke the DICOMweb bearer tokens of users."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token; prints it on the last line")
        create.add_argument("--user", required=True, help="username")
        create.add_argument("--name", default="DICOMweb client", help="what uses the token")
        create.add_argument("--days", type=int, help="expires after this many days")
        listing = sub.add_parser("list", help="list tokens (never the tokens themselves)")
        listing.add_argument("--user", help="only this user's")
        revoke = sub.add_parser("revoke", help="revoke a token by its prefix or id")
        revoke.add_argument("ref", help="the token's prefix (nxr_…), id, or the token")

    def handle(self, *args, action: str, **options) -> None:
        if action == "create":
            self.create(options["user"], options["name"], options["days"])
        elif action == "list":
            self.list(options["user"])
        else:
            self.revoke(options["ref"])

    def create(self, username: str, name: str, days: int | None) -> None:
        user = self._user(username)
        if user.practice_id is None:
            raise CommandError(f"user {username!r} belongs to no practice: DICOMweb refuses it")
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1")
        expires = timezone.now() + dt.timedelta(days=days) if days else None
        token, raw = tokens.create_token(user, name, expires_at=expires)
        self.stdout.write(
            f"token {token.pk} {token.prefix}… for {user.username} ({name}); "
            "shown once, only its hash is stored:"
        )
        self.stdout.write(raw)

    def list(self, username: str | None) -> None:
        rows = ApiToken.objects.select_related("user").order_by("pk")
        if username:
            rows = rows.filter(user=self._user(username))
        for token in rows:
            state = (
                f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
                if token.revoked_at
                else "expired"
                if not token.is_active
                else "active"
            )
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            self.stdout.write(
                f"{token.pk}\t{token.prefix}\t{token.user.username}\t{token.name}\t"
                f"{state}\tlast used {used}"
            )

    def revoke(self, ref: str) -> None:
        named = tokens.tokens_named(ref)
        if not named:
            raise CommandError(f"no token {ref!r} (give its prefix nxr_…, or its id)")
        for token in named:
            done = tokens.revoke(token)
            word = "revoked" if done else "already revoked"
            self.stdout.write(f"{word}: {token.pk} {token.prefix}… of {token.user.username}")

    @staticmethod
    def _user(username: str) -> User:
        try:
            return User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
