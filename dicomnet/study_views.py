"""The study page (issue 9 §2) and its downloads; every access and download is recorded in
the access log. The reads are dicomnet/studies.py's."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from dicomnet import studies
from dicomnet.models import DicomStudy
from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.services import audit

DICOM_CONTENT_TYPE = "application/dicom"


def _study(request: PracticeRequest, pk: int) -> DicomStudy:
    return get_object_or_404(
        DicomStudy.objects.for_practice(request.user.practice).select_related("patient"), pk=pk
    )


@require_GET
@role_required(roles.VIEW_IMAGES)
def study_page(request: PracticeRequest, pk: int) -> HttpResponse:
    """The series and images, the chosen image's header (``?instance=<SOP Instance UID>``,
    else the first), the matching history and the findings."""
    study = _study(request, pk)
    series = studies.study_series(study, request.user.practice.tooth_notation)
    images = [i for s in series for i in s.instances]
    wanted = request.GET.get("instance", "")
    chosen = next(
        (i for i in images if i.sop_instance_uid == wanted), images[0] if images else None
    )
    tags, tags_error = [], ""
    if chosen is not None:
        try:
            tags = studies.tag_dump(chosen)
        except (OSError, ValueError) as exc:
            tags_error = str(exc)
    audit(request.user, action="view_study", patient=study.patient, ref=f"study:{pk}")
    context = {
        "study": study,
        "series": series,
        "chosen": chosen,
        "tags": tags,
        "tags_error": tags_error,
        "findings": studies.findings(chosen) if chosen else [],
        "assignments": studies.assignments(study),
    }
    return render(request, "dicomnet/study.html", context)


@require_GET
@role_required(roles.VIEW_IMAGES)
def study_instance_dicom(request: PracticeRequest, pk: int, instance: str) -> FileResponse:
    """One image's original DICOM object (its latest version), as an attachment."""
    study = _study(request, pk)
    found = studies.latest_instances(study).filter(sop_instance_uid=instance).first()
    if found is None:
        raise Http404("no such image in this study")
    try:
        stream = studies.open_original(found)
    except FileNotFoundError:
        raise Http404("this image has no stored object yet") from None
    audit(request.user, action="download_dicom", patient=study.patient, ref=f"instance:{found.pk}")
    response = FileResponse(
        stream,
        content_type=DICOM_CONTENT_TYPE,
        as_attachment=True,
        filename=f"{found.sop_instance_uid}.dcm",
    )
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@role_required(roles.VIEW_IMAGES)
def study_zip(request: PracticeRequest, pk: int) -> FileResponse:
    """The whole study's originals as a zip, built in a temp file and streamed from it."""
    study = _study(request, pk)
    out = studies.write_study_zip(study)
    audit(request.user, action="download_study_zip", patient=study.patient, ref=f"study:{pk}")
    day = study.study_date.strftime("%Y%m%d") if study.study_date else "undated"
    name = f"study-{day}-{study.pk}.zip"
    response = FileResponse(out, as_attachment=True, filename=name, content_type="application/zip")
    response["Cache-Control"] = "private, no-store"
    return response
