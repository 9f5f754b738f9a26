from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from dicomnet.ingest.previews import IMAGE_CONTENT_TYPE
from dicomnet.ingest.uploads import UploadResult, ingest_upload
from dicomnet.models import DicomInstance
from patients import roles
from patients.audit import record_action
from patients.decorators import PracticeRequest, role_required
from patients.services import audit


@role_required(roles.UPLOAD_IMAGES)
@require_http_methods(["GET", "POST"])
def upload(request: PracticeRequest) -> HttpResponse:
    results: list[UploadResult] | None = []
    status = 200
    if request.method == "POST":
        files = request.FILES.getlist("files")
        if not files:
            status = 400
            results = None
        else:
            results = [r for f in files for r in ingest_upload(f.name or "", f, user=request.user)]
        if results and not any(r.ok for r in results):
            status = 400
    return render(request, "dicomnet/upload.html", {"results": results}, status=status)


@role_required(roles.VIEW_IMAGES)
def instance_image(request: PracticeRequest, pk: int, kind: str) -> FileResponse:
    instance = get_object_or_404(DicomInstance.objects.for_practice(request.user.practice), pk=pk)
    key = instance.thumbnail_key if kind == "thumbnail" else instance.preview_key
    if not key:
        raise Http404(instance.preview_error or "no preview for this image")
    patient = instance.study.patient if instance.study else None
    if kind == "preview":
        audit(request.user, action="view_image", patient=patient, ref=f"instance:{pk}")
    else:
        # Thumbnails come by the dozen with each chart: the audit trail has them (with the
        # patient), the practice's access log only has the chart they came with.
        record_action(request.user, action="view_thumbnail", patient=patient, ref=f"instance:{pk}")
    response = FileResponse(default_storage.open(key, "rb"), content_type=IMAGE_CONTENT_TYPE)
    response["Cache-Control"] = "private, max-age=3600"
    return response
