"""The practice admin's record of refused associations (``RefusedAssociation``, written by
``dicomnet.net.access``), each with an "Add this device" link to the prefilled device form."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from dicomnet.models import DicomServer, RefusedAssociation
from patients import roles
from patients.decorators import PracticeRequest, role_required

SHOWN = 200


@role_required(roles.VIEW_REFUSED_ASSOCIATIONS)
def refused_associations(request: PracticeRequest) -> HttpResponse:
    practice = request.user.practice
    known = set(DicomServer.objects.for_practice(practice).values_list("ae_title", flat=True))
    rows = list(RefusedAssociation.objects.for_practice(practice)[:SHOWN])
    add_url = reverse("dicom_server_add")
    for row in rows:
        row.is_registered = row.calling_ae in known  # type: ignore[attr-defined]  # template
        row.add_url = f"{add_url}?" + urlencode(  # type: ignore[attr-defined]
            {"ae_title": row.calling_ae, "host": row.peer_address, "name": row.calling_ae}
        )
    return render(request, "dicomnet/refused_associations.html", {"refusals": rows})
