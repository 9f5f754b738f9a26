"""A person's preferences."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from patients.models import User


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["email", "email_notifications"]

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("email_notifications") and not data.get("email"):
            self.add_error("email", _("An email address is needed to get the notifications."))
        return data
