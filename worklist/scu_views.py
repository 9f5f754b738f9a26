"""The page that queries an external worklist and imports it. Views only translate HTTP:
the query is ``worklist.scu``, the import ``worklist.importing``."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from dicomnet.models import DicomServer
from patients import roles
from patients.decorators import PracticeRequest, role_required
from patients.models import Practice
from patients.widgets import IsoDateInput
from worklist.importing import import_records
from worklist.scu import WorklistQueryError, query_worklist, worklist_providers

LONGEST_RANGE_DAYS = 31


class WorklistImportForm(forms.Form):
    server: forms.ModelChoiceField[DicomServer] = forms.ModelChoiceField(
        queryset=None, label=_("Worklist provider")
    )
    date_from = forms.DateField(label=_("From"), widget=IsoDateInput())
    date_to = forms.DateField(label=_("To"), widget=IsoDateInput())
    station_ae = forms.CharField(label=_("Station AE title"), max_length=16, required=False)
    modality = forms.CharField(label=_("Modality"), max_length=16, required=False)

    def __init__(self, *args, practice: Practice, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["server"]).queryset = worklist_providers(practice)

    def clean(self) -> dict:
        data = cast(dict[str, Any], super().clean())  # Form.clean: the cleaned_data dict
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The range must start before it ends."))
        if start and end and (end - start).days >= LONGEST_RANGE_DAYS:
            raise forms.ValidationError(
                _("Ask for at most %(days)d days at a time.") % {"days": LONGEST_RANGE_DAYS}
            )
        return data


@role_required(roles.ADD_WORKLIST_ITEM)
@require_http_methods(["GET", "POST"])
def import_worklist(request: PracticeRequest) -> HttpResponse:
    """GET with a provider: show its items. POST: query them again and import them."""
    practice = request.user.practice
    if request.method == "POST":
        data = request.POST
    elif "server" in request.GET:
        data = request.GET
    else:
        data = None
    today = timezone.localdate()
    form = WorklistImportForm(
        data, practice=practice, initial={"date_from": today, "date_to": today}
    )
    context: dict = {"form": form, "records": None, "report": None, "error": ""}
    status = 200
    if data is not None and form.is_valid():
        choice = form.cleaned_data
        try:
            records = query_worklist(
                choice["server"],
                date_from=choice["date_from"],
                date_to=choice["date_to"],
                station_ae=choice["station_ae"],
                modality=choice["modality"],
            )
        except WorklistQueryError as exc:
            context["error"], status = str(exc), 502
        else:
            context["records"] = records
            if request.method == "POST":
                context["report"] = import_records(
                    practice=practice, server=choice["server"], records=records
                )
    elif data is not None:
        status = 400
    return render(request, "worklist/import.html", context, status=status)
