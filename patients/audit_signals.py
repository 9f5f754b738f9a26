"""What the audit trail hears without being called (connected in PatientsConfig.ready):
logins, logouts and failed logins, lockouts (django-axes), and changes of anyone's roles
or permissions."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed
from django.dispatch import receiver
from django.http import HttpRequest

from patients import audit
from patients.models import AuditEvent, User

FAILURE = AuditEvent.Outcome.MINOR_FAILURE


def client_address(request: HttpRequest | None) -> str:
    """The address django-axes decided is the client's (behind the proxy, the one it saw),
    else the socket's."""
    if request is None:
        return ""
    return getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR", "")


@receiver(user_logged_in)
def _logged_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    audit.record(
        "110114",
        action="E",
        event_type="110122",
        what="login",
        user=user,
        address=client_address(request),
    )


@receiver(user_logged_out)
def _logged_out(sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any):
    if user is None:
        return
    audit.record(
        "110114",
        action="E",
        event_type="110123",
        what="logout",
        user=user,
        address=client_address(request),
    )


@receiver(user_login_failed)
def _login_failed(sender: Any, credentials: dict, request: HttpRequest | None = None, **kw: Any):
    username = str(credentials.get("username", ""))
    known = User.objects.filter(username=username).values_list("practice_id", flat=True).first()
    audit.record(
        "110114",
        action="E",
        event_type="110122",
        what="login_failed",
        outcome=FAILURE,
        outcome_text="wrong user name or password",
        username=username,
        practice_id=known,
        address=client_address(request),
    )


@receiver(user_locked_out)
def _locked_out(sender: Any, request: HttpRequest | None, username: str, ip_address: str, **kw):
    known = User.objects.filter(username=username).values_list("practice_id", flat=True).first()
    audit.record(
        "110113",
        action="E",
        event_type="110126",
        what="login_locked_out",
        outcome=AuditEvent.Outcome.SERIOUS_FAILURE,
        outcome_text="too many failed logins: locked out",
        username=username,
        practice_id=known,
        address=ip_address or client_address(request),
    )


def _names(model: Any, pks: set[int] | None) -> list[str]:
    if not pks:
        return []
    if model is Group:
        return sorted(Group.objects.filter(pk__in=pks).values_list("name", flat=True))
    rows = model.objects.filter(pk__in=pks).select_related("content_type")
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in rows)


def _roles_changed(sender: Any, instance: Any, action: str, model: Any, pk_set: Any, **kw: Any):
    """A person's groups or permissions, or a group's permissions, changed (110136)."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    subject = f"user:{instance.username}" if isinstance(instance, User) else f"group:{instance}"
    audit.record(
        "110113",
        action="U",
        event_type="110136",
        what="roles_changed",
        practice_id=getattr(instance, "practice_id", None),
        object_ref=subject,
        detail={"change": action.removeprefix("post_"), "items": _names(model, pk_set)},
    )


for _through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
    m2m_changed.connect(_roles_changed, sender=_through, dispatch_uid=f"audit-{_through}")
