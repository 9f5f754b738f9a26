"""Why a study was matched (or not) to a patient, as a code and its parameters.

A reason is stored as a code with parameters (``DicomStudy.status_reason_params``, a
candidate's ``why_code``/``why_params``) and rendered in the reader's language when shown;
its English rendering is also kept (``status_reason``, ``why``) for logs, the admin search
and rows written before the codes existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import translation
from django.utils.translation import gettext, gettext_noop

# code -> English msgid with %(name)s parameters (French in locale/fr/LC_MESSAGES/django.po)
REASONS: dict[str, str] = {
    "patient_id": gettext_noop("PatientID %(patient_id)s is chart number"),
    "no_name": gettext_noop("no PatientID match and no patient name"),
    "no_birth_date": gettext_noop("no PatientID match and no birth date to confirm the name"),
    "name_dob": gettext_noop("name and date of birth"),
    "shared_name_dob": gettext_noop("%(count)s patients share this name and date of birth"),
    "no_name_dob": gettext_noop("no patient with this name and date of birth"),
    "worklist_item": gettext_noop("worklist item %(accession)s (%(key)s %(value)s)"),
    "worklist_conflict": gettext_noop(
        "worklist item %(accession)s (%(key)s %(value)s) is for %(name)s (chart %(chart)s), "
        "but the images carry PatientID %(patient_id)s: check which patient these images "
        "belong to"
    ),
    "imported": gettext_noop("imported from %(server)s for this patient"),
    "linked_by_hand": gettext_noop("linked by hand to chart %(chart)s by %(user)s"),
    # why a candidate was proposed
    "same_name": gettext_noop("same name"),
    "same_name_dob": gettext_noop("same name and date of birth"),
    "same_name_other_dob": gettext_noop("same name, different date of birth"),
    "same_dob": gettext_noop("same date of birth"),
    "scheduled_on": gettext_noop("scheduled on worklist item %(accession)s (%(key)s %(value)s)"),
    "patient_id_chart": gettext_noop("PatientID of the images is their chart number"),
}


@dataclass(frozen=True)
class Reason:
    code: str
    params: dict = field(default_factory=dict)

    @property
    def english(self) -> str:
        with translation.override("en"):
            return self.text()

    def text(self) -> str:
        """In the active language."""
        return render_reason(self.code, self.params)

    def stored(self) -> dict:
        return {"code": self.code, **self.params}


def render_reason(code: str, params: dict | None, fallback: str = "") -> str:
    """The reason in the active language; ``fallback`` for an unknown or missing code."""
    msgid = REASONS.get(code or "")
    if msgid is None:
        return fallback
    try:
        return gettext(msgid) % (params or {})
    except (KeyError, TypeError, ValueError):
        return fallback or msgid


def render_stored(stored: dict | None, fallback: str = "") -> str:
    """A reason stored as ``{"code": ..., **params}``."""
    stored = dict(stored or {})
    return render_reason(stored.pop("code", ""), stored, fallback)
