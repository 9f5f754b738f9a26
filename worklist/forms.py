"""Calendar forms: they parse and check the input; patients.services does the writing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.models import Patient, Practice
from patients.widgets import IsoDateInput
from worklist.models import ProcedureModality
from worklist.selectors import bookable_patients


def local_datetime(day: dt.date, time: dt.time) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, time), timezone.get_current_timezone())


class WhenForm(forms.Form):
    date = forms.DateField(label=_("Date"), widget=IsoDateInput())
    time = forms.TimeField(label=_("Time"), widget=forms.TimeInput(attrs={"type": "time"}))
    duration = forms.IntegerField(
        label=_("Length (minutes)"), min_value=5, max_value=720, initial=30
    )
    operatory = forms.CharField(label=_("Operatory"), max_length=50, required=False)

    def __init__(self, *args, operatories: Iterable[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(name, name) for name in operatories if name]
        self.fields["operatory"].widget = forms.Select(choices=[("", _("(none)")), *choices])

    @property
    def start(self) -> dt.datetime:
        return local_datetime(self.cleaned_data["date"], self.cleaned_data["time"])

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(minutes=self.cleaned_data["duration"])


class AppointmentForm(WhenForm):
    patient: forms.ModelChoiceField[Patient] = forms.ModelChoiceField(
        label=_("Patient"), queryset=None
    )
    procedure_code = forms.CharField(label=_("Procedure code"), max_length=20, required=False)
    procedure_description = forms.CharField(label=_("Procedure"), max_length=200, required=False)
    needs_imaging = forms.BooleanField(label=_("Needs imaging"), required=False)
    provider = forms.CharField(label=_("Dentist"), max_length=100, required=False)

    field_order = ["patient", "date", "time", "duration", "operatory", "procedure_code"]

    def __init__(self, *args, practice: Practice, **kwargs):
        super().__init__(*args, **kwargs)
        self.practice = practice
        patient = cast(forms.ModelChoiceField, self.fields["patient"])
        patient.queryset = bookable_patients(practice)
        patient.label_from_instance = lambda obj: (  # type: ignore[method-assign]  # per form
            f"{obj.family_name}, {obj.given_name} ({obj.chart_number})"
        )
        self.procedures = {
            row.procedure_code: row for row in ProcedureModality.objects.for_practice(practice)
        }
        self.fields["procedure_code"].widget = forms.TextInput(
            attrs={"list": "procedure-codes", "autocomplete": "off"}
        )

    def clean(self) -> dict:
        data = cast(dict[str, Any], super().clean())  # Form.clean: the cleaned_data dict
        code = (data.get("procedure_code") or "").strip().upper()
        data["procedure_code"] = code
        known = self.procedures.get(code)
        if known and not data.get("procedure_description"):
            data["procedure_description"] = known.description
        return data


class MoveForm(WhenForm):
    pass
