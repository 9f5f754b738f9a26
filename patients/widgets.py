"""Form widgets shared by every app's forms."""

from __future__ import annotations

from django import forms


class IsoDateInput(forms.DateInput):
    """``<input type=date>`` whose value is always ISO (yyyy-mm-dd).

    Browsers accept only ISO in a date input: the French format (01/12/2026) would be
    rejected and the field shown empty, losing the date on submit.
    """

    input_type = "date"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")
