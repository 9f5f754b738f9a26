"""The notices' buttons: mark one, or all, read. Views only translate HTTP."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from patients.decorators import PracticeRequest, role_required
from patients.services import mark_notification_read, mark_notifications_read_all


def _back(request: PracticeRequest) -> HttpResponse:
    back = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = "/"
    return redirect(back)


@require_POST
@role_required()
def notification_read(request: PracticeRequest, pk: int) -> HttpResponse:
    mark_notification_read(request.user.practice, pk)
    return _back(request)


@require_POST
@role_required()
def notifications_read(request: PracticeRequest) -> HttpResponse:
    mark_notifications_read_all(request.user.practice)
    return _back(request)
