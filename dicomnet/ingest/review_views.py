"""The review queue's pages (/review/): thin views over ``dicomnet.ingest.review``."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from dicomnet.ingest import review
from dicomnet.models import DicomStudy, StudyAssignment
from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.models import Patient
from patients.selectors import search_patients
from patients.services import audit

QUEUE_LIMIT = 100


@role_required(roles.VIEW_REVIEW_QUEUE)
@require_GET
def queue(request: PracticeRequest, error: str = "", status: int = 200) -> HttpResponse:
    practice = request.user.practice
    studies = list(review.review_queue(practice)[:QUEUE_LIMIT])
    for study in studies:
        audit(request.user, action="view_review_study", ref=f"study:{study.pk}")
    groups = review.source_groups(studies)
    return render(
        request,
        "review/queue.html",
        {
            "groups": groups,
            "study_count": len(studies),
            "batches": review.recent_batches(practice),
            "error": error,
        },
        status=status,
    )


def _selected_studies(request: PracticeRequest) -> list[DicomStudy]:
    """The studies ticked in the form: all of the practice and waiting, or 404."""
    ids = {int(i) for i in request.POST.getlist("study") if i.isdigit()}
    studies = list(
        DicomStudy.objects.for_practice(request.user.practice)
        .filter(pk__in=ids, status=DicomStudy.Status.NEEDS_REVIEW)
        .order_by("created_at", "id")
    )
    if not ids or len(studies) != len(ids):
        raise Http404("no such study waiting for review")
    return studies


@role_required(roles.WORK_REVIEW_QUEUE)
@require_POST
def assign(request: PracticeRequest) -> HttpResponse:
    studies = _selected_studies(request)
    patient = get_object_or_404(
        Patient.objects.for_practice(request.user.practice), pk=request.POST.get("patient") or 0
    )
    try:
        review.assign(studies, patient, by=request.user)
    except review.ReviewError as exc:
        return queue(request, error=str(exc), status=400)
    return redirect("review_queue")


@role_required(roles.WORK_REVIEW_QUEUE, "patients.add_patient")
@require_POST
def create_patient(request: PracticeRequest) -> HttpResponse:
    studies = _selected_studies(request)
    try:
        review.create_patient_and_assign(
            studies, chart_number=request.POST.get("chart_number", ""), by=request.user
        )
    except review.ReviewError as exc:
        return queue(request, error=str(exc), status=400)
    return redirect("review_queue")


@role_required(roles.WORK_REVIEW_QUEUE)
@require_POST
def undo(request: PracticeRequest, batch: str) -> HttpResponse:
    try:
        review.undo(batch, practice=request.user.practice, by=request.user)
    except StudyAssignment.DoesNotExist:
        raise Http404("no such assignment") from None
    except review.ReviewError as exc:
        return queue(request, error=str(exc), status=400)
    return redirect("review_queue")


@role_required(roles.WORK_REVIEW_QUEUE)
@require_GET
def patient_search(request: PracticeRequest) -> HttpResponse:
    """The htmx search box's results: buttons that submit the group's form (``form``)."""
    query = request.GET.get("q", "").strip()
    patients = search_patients(request.user.practice, query)[:10] if query else []
    return render(
        request,
        "review/_patient_results.html",
        {"patients": patients, "q": query, "form_id": request.GET.get("form", "")[:20]},
    )
