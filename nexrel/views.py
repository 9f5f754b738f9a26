"""The clinician's pages that draw on every app: home (what needs review, notifications), the
patient list and the patient's chart. Views only translate HTTP; reads go through
``for_practice`` and the apps' selectors."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from dicomnet.chart import chart_timeline
from dicomnet.dental.selectors import tooth_chart
from dicomnet.dental.teeth import CHART_LOWER, CHART_UPPER
from dicomnet.models import DicomStudy
from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.models import Patient
from patients.selectors import chart_appointments, search_patients, unread_notifications
from patients.services import audit, mark_notifications_read


@role_required()
def home(request: PracticeRequest) -> HttpResponse:
    practice = request.user.practice
    studies = (
        DicomStudy.objects.for_practice(practice).select_related("patient").order_by("-updated_at")
    )
    return render(
        request,
        "home.html",
        {
            "recent": studies[:20],
            "needs_review": studies.filter(status=DicomStudy.Status.NEEDS_REVIEW)[:20],
            "notifications": unread_notifications(request.user)[:20],
        },
    )


PATIENTS_PER_PAGE = 50


@role_required(roles.VIEW_PATIENT)
def patient_list(request: PracticeRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    page = Paginator(search_patients(request.user.practice, query), PATIENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    patients = list(page)
    counts = dict(
        Patient.objects.filter(pk__in=[p.pk for p in patients])
        .annotate(n=Count("studies"))
        .values_list("pk", "n")
    )
    for patient in patients:
        patient.study_count = counts.get(patient.pk, 0)  # type: ignore[attr-defined]
    return render(request, "patients/list.html", {"patients": patients, "page": page, "q": query})


@role_required(roles.VIEW_PATIENT)
def patient_detail(request: PracticeRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(Patient.objects.for_practice(request.user.practice), pk=pk)
    images = request.user.has_perm(roles.VIEW_IMAGES)  # the front desk sees no image
    action = "view_patient_images" if images else "view_patient"
    audit(request.user, action=action, patient=patient, ref=f"patient:{pk}")
    mark_notifications_read(request.user, patient=patient)
    upcoming, past = chart_appointments(patient, timezone.now())
    context: dict[str, object] = {
        "patient": patient,
        "age": patient.age_on(timezone.localdate()),
        "upcoming": upcoming,
        "past": past,
        "timeline": None,
    }
    if images:
        notation = request.user.practice.tooth_notation
        context["timeline"] = chart_timeline(patient, notation)
        chart = tooth_chart(patient, notation)
        context["chart_rows"] = [[chart[t] for t in CHART_UPPER], [chart[t] for t in CHART_LOWER]]
        context["chosen_tooth"] = chart.get(request.GET.get("tooth", ""))
    return render(request, "patients/detail.html", context)
