"""The clinician's pages that draw on every app: home (what needs review, notifications), the
patient list and the patient's chart. Views only translate HTTP; reads go through
``for_practice`` and the apps' selectors."""

from __future__ import annotations

from django.db.models import Count, Prefetch
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from dicomnet.models import DicomInstance, DicomStudy
from patients.decorators import PracticeRequest, practice_required
from patients.models import Patient
from patients.selectors import search_patients, unread_notifications
from patients.services import audit, mark_notifications_read


@practice_required
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
            "notifications": unread_notifications(practice)[:20],
        },
    )


@practice_required
def patient_list(request: PracticeRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    patients = search_patients(request.user.practice, query).annotate(study_count=Count("studies"))
    return render(request, "patients/list.html", {"patients": patients[:200], "q": query})


@practice_required
def patient_detail(request: PracticeRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(Patient.objects.for_practice(request.user.practice), pk=pk)
    audit(request.user, action="view_patient_images", patient=patient, ref=f"patient:{pk}")
    mark_notifications_read(patient)
    return render(
        request,
        "patients/detail.html",
        {"patient": patient, "studies": _chart_studies(patient)},
    )


def _chart_studies(patient: Patient):
    """The patient's studies with their instances, in chart order."""
    return (
        DicomStudy.objects.for_practice(patient.practice_id)
        .filter(patient=patient)
        .select_related("appointment", "server")
        .prefetch_related(
            Prefetch("instances", queryset=DicomInstance.objects.order_by("instance_number", "id"))
        )
    )
