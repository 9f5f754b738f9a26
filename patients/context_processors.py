from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from patients.models import User
from patients.selectors import unread_notifications

# The bell's dropdown shows the count and only the latest few notices.
BANNER_LATEST = 3
VIEW_NOTIFICATION = "patients.view_notification"


def notifications(request: HttpRequest) -> dict:
    """The bell in the header (templates/patients/bell.html), for a role that may see the
    notifications; ``patients.views.notification_bell`` renders it again for htmx."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated or not user.practice_id:
        return {}
    if not user.has_perm(VIEW_NOTIFICATION):
        return {}
    return bell_context(user)


def bell_context(user: User) -> dict:
    """The user's own unread notices: what others of the practice read stays here."""
    unread = unread_notifications(user).select_related("patient")
    latest = list(unread[:BANNER_LATEST])
    if not latest:
        return {"show_bell": True, "unread_count": 0, "unread_notifications": []}
    count = len(latest) if len(latest) < BANNER_LATEST else unread.count()
    for notice in latest:
        notice.url = notice_url(notice)  # type: ignore[attr-defined]  # for the template
    return {"show_bell": True, "unread_count": count, "unread_notifications": latest}


def notice_url(notice) -> str:
    """The patient's chart; for an unidentified patient, the review queue (or, without one,
    the study in Django admin); for an operations alert, the health report."""
    if getattr(notice, "for_admins", False):
        return reverse("health")
    if notice.patient_id is not None:
        return reverse("patient_detail", args=[notice.patient_id])
    for name, args in (
        ("review_queue", []),
        ("review", []),
        ("admin:dicomnet_dicomstudy_change", [notice.study_id]),
    ):
        if args and args[0] is None:
            continue
        try:
            return reverse(name, args=args)
        except NoReverseMatch:
            continue
    return ""
