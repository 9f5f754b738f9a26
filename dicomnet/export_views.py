"""The patient's copy of their record, as a download (the work is dicomnet/export.py's)."""

from __future__ import annotations

import tempfile

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from dicomnet.export import export_record
from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.models import Patient


@require_GET
@role_required(roles.EXPORT_RECORD)
def record_export(request: PracticeRequest, pk: int) -> FileResponse:
    """The zip, built in an anonymous temp file (gone once the response is closed) and
    streamed from it: a large study never sits in memory."""
    patient = get_object_or_404(Patient.objects.for_practice(request.user.practice), pk=pk)
    out = tempfile.TemporaryFile(prefix="nexrel-record-")
    try:
        export_record(patient, user=request.user, out=out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    day = timezone.localdate().strftime("%Y%m%d")
    name = f"record-{slugify(patient.chart_number) or patient.pk}-{day}.zip"
    return FileResponse(out, as_attachment=True, filename=name, content_type="application/zip")
