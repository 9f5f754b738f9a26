"""``{{ candidate|candidate_why }}``: why a patient was proposed, in the reader's language."""

from __future__ import annotations

from django import template

from patients.reasons import render_reason

register = template.Library()


@register.filter
def candidate_why(candidate: dict) -> str:
    return render_reason(
        candidate.get("why_code", ""), candidate.get("why_params"), candidate.get("why", "")
    )
