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

log = logging.getLogger("patients.matching")


@dataclass
class MatchResult:
    patient: Patient | None
    method: str  # "patient_id", "name_dob", or "" when unmatched
    reason: str
    candidates: list[dict] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return self.patient is not None


def candidate(p: Patient, why: str) -> dict:
    return {
        "id": p.pk,
        "chart_number": p.chart_number,
        "name": p.full_name,
        "birth_date": p.birth_date.isoformat() if p.birth_date else None,
        "why": why,
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
            return MatchResult(by_id, "patient_id", f"PatientID {patient_id} is chart number")

    family, given = split_person_name(patient_name)
    key = normalise_name(f"{family}^{given}")
    if not key:
        return MatchResult(None, "", "no PatientID match and no patient name")

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
            "no PatientID match and no birth date to confirm the name",
            [candidate(p, "same name") for p in same_name],
        )
    exact = [p for p in same_name if p.birth_date == birth_date]
    if len(exact) == 1:
        return MatchResult(exact[0], "name_dob", "name and date of birth")
    if len(exact) > 1:
        return MatchResult(
            None,
            "",
            f"{len(exact)} patients share this name and date of birth",
            [candidate(p, "same name and date of birth") for p in exact],
        )
    others = [candidate(p, "same name, different date of birth") for p in same_name]
    others += [
        candidate(p, "same date of birth")
        for p in patients.filter(birth_date=birth_date).exclude(pk__in=[p.pk for p in same_name])[
            :10
        ]
    ]
    return MatchResult(None, "", "no patient with this name and date of birth", others)
