"""The notifications' bell (its htmx partial and buttons: mark one, or all, read) and a
person's preferences. Views only translate HTTP."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from patients.context_processors import VIEW_NOTIFICATION, bell_context
from patients.decorators import PracticeRequest, role_required
from patients.forms import PreferencesForm
from patients.services import mark_notification_read, mark_notifications_read_all


def _next(request: PracticeRequest) -> str:
    back = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = "/"
    return back


def _back(request: PracticeRequest) -> HttpResponse:
    return redirect(_next(request))


def _bell(request: PracticeRequest) -> HttpResponse:
    return render(request, "patients/bell.html", bell_context(request.user))


@require_GET
@role_required(VIEW_NOTIFICATION)
def notification_bell(request: PracticeRequest) -> HttpResponse:
    """The bell alone, which the header polls (hx-get every 20 s)."""
    return _bell(request)


@require_POST
@role_required()
def notification_read(request: PracticeRequest, pk: int) -> HttpResponse:
    """Mark one notice read for this person (not for the others of the practice). From the
    bell (htmx): ``open`` follows the notice's link (HX-Redirect to ``next``), else the bell
    is redrawn; a plain form goes back to ``next``."""
    mark_notification_read(request.user, pk)
    if request.htmx:
        if request.POST.get("open"):
            return HttpResponse(status=204, headers={"HX-Redirect": _next(request)})
        return _bell(request)
    return _back(request)


@require_POST
@role_required()
def notifications_read(request: PracticeRequest) -> HttpResponse:
    mark_notifications_read_all(request.user)
    if request.htmx:
        return _bell(request)
    return _back(request)


@role_required()
def preferences(request: PracticeRequest) -> HttpResponse:
    """The person's own preferences: the notifications by email (off until asked for)."""
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Your preferences are saved."))
        return redirect("preferences")
    return render(request, "patients/preferences.html", {"form": form})
