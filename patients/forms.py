"""A person's preferences."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.models import User
from patients.widgets import IsoDateInput


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["email", "email_notifications"]

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("email_notifications") and not data.get("email"):
            self.add_error("email", _("An email address is needed to get the notifications."))
        return data


class AuditSearchForm(forms.Form):
    """The privacy officer's search of the audit trail (patients/audit_search.py)."""

    patient = forms.CharField(label=_("Patient"), required=False, max_length=100)
    user = forms.CharField(label=_("User"), required=False, max_length=150)
    device = forms.CharField(label=_("Device (AE title)"), required=False, max_length=16)
    kind = forms.ChoiceField(
        label=_("Events"),
        required=False,
        choices=[
            ("", _("All events")),
            ("images", _("Access to images")),
            ("records", _("Patient records")),
            ("queries", _("Queries")),
            ("exports", _("Exports and transfers")),
            ("logins", _("Sign-ins")),
            ("security", _("Security alerts")),
            ("audit", _("Use of the audit trail")),
            ("network", _("Devices and imports")),
        ],
    )
    since = forms.DateField(label=_("From"), required=False, widget=IsoDateInput())
    until = forms.DateField(label=_("To"), required=False, widget=IsoDateInput())

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("The end date is before the start date."))
        return data
