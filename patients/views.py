"""Pages for clinicians. Views only translate HTTP; reads go through selectors."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from dicomnet.models import DicomStudy
from patients.selectors import (
    patient_studies,
    patients_of,
    search_patients,
    studies_of,
    unread_notifications,
)
from patients.services import audit, mark_notifications_read


def practice_required(view):
    """Logged in and attached to a practice; every query below is scoped to it.

    An htmx request from an expired session is sent to the login page as a whole page
    (HX-Redirect), rather than having the login form swapped into a fragment.
    """

    @login_required
    @wraps(view)
    def in_practice(request: HttpRequest, *args, **kwargs):
        if not request.user.practice_id:
            raise PermissionDenied("this account does not belong to a practice")
        return view(request, *args, **kwargs)

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if getattr(request, "htmx", False) and not request.user.is_authenticated:
            back = request.htmx.current_url_abs_path or "/"
            login = f"{settings.LOGIN_URL}?{urlencode({'next': back})}"
            return HttpResponse(status=204, headers={"HX-Redirect": login})
        return in_practice(request, *args, **kwargs)

    return wrapper


@practice_required
def home(request: HttpRequest) -> HttpResponse:
    practice = request.user.practice
    studies = studies_of(practice).select_related("patient").order_by("-updated_at")
    return render(
        request,
        "home.html",
        {
            "recent": studies[:20],
            "needs_review": studies.filter(status=DicomStudy.Status.NEEDS_REVIEW)[:20],
            "notifications": unread_notifications(practice)[:20],
        },
    )


@practice_required
def patient_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    patients = search_patients(request.user.practice, query).annotate(study_count=Count("studies"))
    return render(request, "patients/list.html", {"patients": patients[:200], "q": query})


@practice_required
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(patients_of(request.user.practice), pk=pk)
    audit(request.user, "view_patient_images", patient=patient, ref=f"patient:{pk}")
    mark_notifications_read(patient)
    return render(
        request,
        "patients/detail.html",
        {"patient": patient, "studies": patient_studies(patient)},
    )
