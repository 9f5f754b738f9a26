"""The session's idle timeout (issue 10 §4): signed out after ``SESSION_IDLE_SECONDS``
without a request of the person's own. Polling does not count (the bell every 20 s, an
import's progress every second), or a chart left open would never time out: those routes
are named in ``BACKGROUND_ROUTES``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

LAST_ACTIVITY = "nexrel_last_activity"
# The time is written at most this often: a viewer fetching 300 slices must not write its
# session 300 times.
RESOLUTION_SECONDS = 60
BACKGROUND_ROUTES = frozenset({"notification_bell", "qr_job_progress"})


def is_background(request: HttpRequest) -> bool:
    match = request.resolver_match
    return request.method == "GET" and match is not None and match.url_name in BACKGROUND_ROUTES


def idle_for(request: HttpRequest, now: float) -> float | None:
    """Seconds since the person's last own request; None before the first."""
    last = request.session.get(LAST_ACTIVITY)
    return None if last is None else now - float(last)


class SessionIdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable, args: Any, kwargs: Any
    ) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        now = time.time()
        idle = idle_for(request, now)
        if idle is not None and idle > settings.SESSION_IDLE_SECONDS:
            logout(request)  # the view then sends the person to the login page
            messages.info(
                request,
                _("You were signed out after %(minutes)d minutes without activity.")
                % {"minutes": settings.SESSION_IDLE_SECONDS // 60},
            )
        elif not is_background(request) and (idle is None or idle > RESOLUTION_SECONDS):
            request.session[LAST_ACTIVITY] = now
        return None
