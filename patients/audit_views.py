"""The privacy officer's page (issue 10 §3): the practice's audit trail searched by patient,
person, device, kind and dates, as a table or CSV. Using it is itself audited (110101)."""

from __future__ import annotations

import csv

from django.core.paginator import Paginator
from django.http import HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from patients import audit, roles
from patients.atna import CSV_COLUMNS, csv_row
from patients.audit_search import AuditQuery, communications, search_audit
from patients.decorators import PracticeRequest, role_required
from patients.forms import AuditSearchForm

EVENTS_PER_PAGE = 100


class _Echo:
    """csv.writer's file: each row written is handed back, to be streamed."""

    def write(self, text: str) -> str:
        return text


def _csv(events) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for event in events.iterator(2000):
            yield writer.writerow(csv_row(event))

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return StreamingHttpResponse(
        rows(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="nexrel-audit-{stamp}.csv"'},
    )


@role_required(roles.USE_AUDIT_TRAIL)
def audit_trail(request: PracticeRequest) -> HttpResponseBase:
    form = AuditSearchForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "patients/audit.html", {"form": form}, status=400)
    query = AuditQuery(**form.cleaned_data) if form.is_bound else AuditQuery()
    events = search_audit(request.user.practice, query)
    as_csv = request.GET.get("format") == "csv"
    audit.record(
        "110101",
        action="R",
        what="audit_export_csv" if as_csv else "audit_search",
        user=request.user,
        detail=query.describe(),
    )
    if as_csv:
        return _csv(events)
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "patients/audit.html",
        {
            "form": form,
            "page": page,
            "query_string": params.urlencode(),
        },
    )


@role_required(roles.USE_AUDIT_TRAIL)
def communications_register(request: PracticeRequest) -> HttpResponseBase:
    """R-22.1's register of communications: exports, transfers to other systems, and reads
    by other systems' tokens, from the audit trail."""
    events = communications(request.user.practice)
    as_csv = request.GET.get("format") == "csv"
    audit.record(
        "110101",
        action="R",
        what="communications_csv" if as_csv else "communications",
        user=request.user,
    )
    if as_csv:
        return _csv(events)
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "patients/communications.html", {"page": page})
