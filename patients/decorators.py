"""Access to the pages: logged in, attached to a practice, and of a role that may (a
permission of patients/roles.py).

Every route is marked: ``role_required`` sets ``view.nexrel_access`` to the permissions it
checks, and patients/tests/test_route_permissions.py fails for a route without the mark."""

from __future__ import annotations

from functools import wraps
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from patients.models import Practice, User

    class PracticeUser(User):
        """A user attached to a practice, as ``practice_required`` makes sure (for mypy only)."""

        practice: Practice
        practice_id: int


class HtmxRequest(HttpRequest):
    """The type of a request through django-htmx's middleware, which sets ``request.htmx``."""

    htmx: HtmxDetails


class PracticeRequest(HtmxRequest):
    """The type of the request a ``practice_required`` view is given."""

    user: PracticeUser


def practice_required(view):
    """Logged in and attached to a practice; every query below is scoped to it.

    An htmx request from an expired session is sent to the login page as a whole page
    (HX-Redirect), rather than having the login form swapped into a fragment.
    """

    @login_required
    @wraps(view)
    def in_practice(request: PracticeRequest, *args, **kwargs):
        if not request.user.practice_id:
            raise PermissionDenied("this account does not belong to a practice")
        return view(request, *args, **kwargs)

    @wraps(view)
    def wrapper(request: HtmxRequest, *args, **kwargs):
        if getattr(request, "htmx", False) and not request.user.is_authenticated:
            back = request.htmx.current_url_abs_path or "/"
            login = f"{settings.LOGIN_URL}?{urlencode({'next': back})}"
            return HttpResponse(status=204, headers={"HX-Redirect": login})
        return in_practice(request, *args, **kwargs)

    return wrapper


def role_required(*permissions: str):
    """``practice_required``, and the user holds every one of ``permissions`` (``app.codename``,
    patients/roles.py), or 403 (templates/403.html). No permission: any role of the practice.

    Another practice's object stays a 404: the view reads through ``for_practice``. The view
    is marked ``nexrel_access = permissions`` for the route test.
    """

    def decorate(view):
        @wraps(view)
        def in_role(request: PracticeRequest, *args, **kwargs):
            if not request.user.has_perms(permissions):
                raise PermissionDenied("your role in this practice does not allow this page")
            return view(request, *args, **kwargs)

        checked = practice_required(in_role)
        checked.nexrel_access = permissions
        return checked

    return decorate
