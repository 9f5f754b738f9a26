"""``{{ study.patient_name|person_name }}``: a DICOM PN as people read it."""

from __future__ import annotations

from django import template

from patients.names import display_person_name

register = template.Library()


@register.filter
def person_name(pn: str | None) -> str:
    return display_person_name(pn)
