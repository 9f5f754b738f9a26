"""The operations dashboard's page and its retry button (dicomnet/ops_dashboard.py)."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from dicomnet import ops_dashboard as board
from dicomnet.ingest.pipeline import reprocess
from dicomnet.models import DicomInstance, OpsAlert
from patients import roles
from patients.decorators import PracticeRequest, role_required


@role_required(roles.MANAGE_DEVICES)
def dashboard(request: PracticeRequest) -> HttpResponse:
    practice = request.user.practice
    today = timezone.localdate()
    p50, p95 = board.processing_time(practice, today)
    return render(
        request,
        "dicomnet/ops.html",
        {
            "charts": [
                board.images_per_day(practice, today),
                p50,
                p95,
                board.error_rate(practice, today),
                board.storage_growth(practice, today),
            ],
            "devices": board.devices(practice),
            "failures": board.recent_failures(practice),
            "alerts": OpsAlert.objects.filter(resolved_at=None).filter(
                Q(practice=None) | Q(practice=practice)
            ),
        },
    )


@role_required(roles.MANAGE_DEVICES)
@require_POST
def retry_failure(request: PracticeRequest, pk: int) -> HttpResponse:
    instance = get_object_or_404(
        DicomInstance.objects.filter(
            practice=request.user.practice, state=DicomInstance.State.ERROR
        ),
        pk=pk,
    )
    reprocess(instance)
    messages.success(request, _("The image is queued to be processed again."))
    return redirect("ops_dashboard")
