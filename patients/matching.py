"""Match an incoming study's patient to a chart in the practice.

Rules, in order:
1. An exact DICOM PatientID equal to a chart number wins.
2. Otherwise a normalised name plus the date of birth must match exactly one patient.
3. Anything else (no candidate, several, no birth date) needs a person's review, with
   the candidates recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from patients.models import Patient, Practice
from patients.names import normalise_name, split_person_name
from patients.reasons import Reason

log = logging.getLogger("patients.matching")


@dataclass
class MatchResult:
    patient: Patient | None
    method: str  # "patient_id", "name_dob", or "" when unmatched
    why: Reason
    candidates: list[dict] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """In English, for logs and ``status_reason``; ``why`` renders it in any language."""
        return self.why.english

    @property
    def matched(self) -> bool:
        return self.patient is not None


def candidate(p: Patient, code: str, **params) -> dict:
    """A patient proposed to the reviewer; why, as a ``patients.reasons`` code."""
    why = Reason(code, params)
    return {
        "id": p.pk,
        "chart_number": p.chart_number,
        "name": p.full_name,
        "birth_date": p.birth_date.isoformat() if p.birth_date else None,
        "why": why.english,
        "why_code": code,
        "why_params": params,
    }


def match_patient(
    *,
    practice: Practice,
    patient_id: str,
    patient_name: str,
    birth_date: dt.date | None,
) -> MatchResult:
    result = _match(
        practice, patient_id=patient_id.strip(), patient_name=patient_name, birth_date=birth_date
    )
    log.info(
        "match practice=%s PatientID=%r PatientName=%r dob=%s -> %s (%s) candidates=%d",
        practice.pk,
        patient_id,
        patient_name,
        birth_date,
        result.patient.chart_number if result.patient else "NO MATCH",
        result.reason,
        len(result.candidates),
    )
    return result


def _match(
    practice: Practice, *, patient_id: str, patient_name: str, birth_date: dt.date | None
) -> MatchResult:
    patients = Patient.objects.for_practice(practice)
    if patient_id:
        by_id = patients.filter(chart_number=patient_id).first()
        if by_id:
            return MatchResult(
                by_id, "patient_id", Reason("patient_id", {"patient_id": patient_id})
            )

    family, given = split_person_name(patient_name)
    key = normalise_name(f"{family}^{given}")
    if not key:
        return MatchResult(None, "", Reason("no_name"))

    same_name = list(patients.filter(name_key=key))
    if not same_name:
        # Looser: same family name, first given name equal (devices drop middle names).
        family_key = normalise_name(family)
        given_first = normalise_name(given).split(" ")[0] if given else ""
        same_name = [
            p
            for p in patients.filter(name_key__startswith=family_key + " ")
            if normalise_name(p.family_name) == family_key
            and normalise_name(p.given_name).split(" ")[0] == given_first
        ]

    if birth_date is None:
        return MatchResult(
            None,
            "",
            Reason("no_birth_date"),
            [candidate(p, "same_name") for p in same_name],
        )
    exact = [p for p in same_name if p.birth_date == birth_date]
    if len(exact) == 1:
        return MatchResult(exact[0], "name_dob", Reason("name_dob"))
    if len(exact) > 1:
        return MatchResult(
            None,
            "",
            Reason("shared_name_dob", {"count": len(exact)}),
            [candidate(p, "same_name_dob") for p in exact],
        )
    others = [candidate(p, "same_name_other_dob") for p in same_name]
    others += [
        candidate(p, "same_dob")
        for p in patients.filter(birth_date=birth_date).exclude(pk__in=[p.pk for p in same_name])[
            :10
        ]
    ]
    return MatchResult(None, "", Reason("no_name_dob"), others)
