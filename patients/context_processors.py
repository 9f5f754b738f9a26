from __future__ import annotations

from django.http import HttpRequest

from patients.selectors import unread_notifications


def notifications(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated or not user.practice_id:
        return {}
    return {"unread_notifications": unread_notifications(user.practice)[:10]}
