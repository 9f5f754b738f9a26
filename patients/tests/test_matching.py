"""patients.matching: French names folded alike, and the matching rules against real charts.

The `practice` fixture is the demo practice: Côté Zoé (1001, 1988-03-14), Bélanger Étienne
(1002), Saint-Pierre François (1004, 1969-01-30), O'Connor-Pelletier Jérôme (1008), ...
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from patients.matching import match_patient
from patients.models import Patient, Practice
from patients.names import normalise_name

ZOE_DOB = dt.date(1988, 3, 14)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("COTE^ZOE", "Côté^Zoé"),
        ("cote zoe", "CÔTÉ ZOÉ"),
        ("St-Pierre^François", "Saint-Pierre^Francois"),
        ("ST PIERRE^FRANCOIS", "Saint-Pierre^François"),
        ("St. Pierre^François", "SAINT PIERRE^FRANCOIS"),
        ("Ste-Anne^Hélène", "Sainte-Anne^Helene"),
        ("STE ANNE^HELENE", "Sainte Anne^Hélène"),
        ("Saint-Pierre^François", "Saint Pierre^François"),
        ("Saint^Pierre^François", "Saint-Pierre François"),
        ("O'Connor^Jérôme", "O CONNOR^JEROME"),
        ("O’Connor-Pelletier^Jérôme", "O'CONNOR PELLETIER^JEROME"),
        ("Bélanger^^Étienne^^", "BELANGER ETIENNE"),
    ],
)
def test_names_written_differently_fold_alike(a: str, b: str) -> None:
    assert normalise_name(a) == normalise_name(b)


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("Côté^Zoé", "cote zoe"),
        ("St-Pierre^François", "saint pierre francois"),
        ("Ste-Anne", "sainte anne"),
        ("O'Connor", "o connor"),
        ("  Lévesque ^ Geneviève  ", "levesque genevieve"),
    ],
)
def test_normalised_form(name: str, folded: str) -> None:
    assert normalise_name(name) == folded


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Côté^Zoé", "Cotte^Zoé"),
        ("Pierre^François", "Saint-Pierre^François"),
        ("Saint-Pierre^François", "Sainte-Pierre^François"),
    ],
)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert normalise_name(a) != normalise_name(b)


def zoe(practice: Practice) -> Patient:
    return Patient.objects.get(practice=practice, chart_number="1001")


def test_patient_id_equal_to_chart_number_wins_even_with_a_wrong_name(practice) -> None:
    result = match_patient(
        practice=practice, patient_id="1002", patient_name="COTE^ZOE", birth_date=ZOE_DOB
    )
    assert result.matched
    assert result.patient.chart_number == "1002"  # Bélanger, not Côté
    assert result.method == "patient_id"


def test_patient_id_is_compared_without_padding(practice) -> None:
    result = match_patient(practice=practice, patient_id=" 1004 ", patient_name="", birth_date=None)
    assert result.patient.family_name == "Saint-Pierre"


@pytest.mark.parametrize("dicom_name", ["COTE^ZOE", "Côté^Zoé", "cote^zoe", "COTE^ZOE^^^"])
def test_name_and_birth_date_match_a_unique_patient(practice, dicom_name: str) -> None:
    result = match_patient(
        practice=practice, patient_id="UNKNOWN-77", patient_name=dicom_name, birth_date=ZOE_DOB
    )
    assert result.patient == zoe(practice)
    assert result.method == "name_dob"
    assert result.candidates == []


def test_particle_written_short_matches_the_chart(practice) -> None:
    result = match_patient(
        practice=practice,
        patient_id="",
        patient_name="ST-PIERRE^FRANCOIS",
        birth_date=dt.date(1969, 1, 30),
    )
    assert result.patient.chart_number == "1004"


def test_apostrophe_and_hyphen_in_a_family_name(practice) -> None:
    result = match_patient(
        practice=practice,
        patient_id="",
        patient_name="O CONNOR PELLETIER^JEROME",
        birth_date=dt.date(1996, 4, 3),
    )
    assert result.patient.chart_number == "1008"


def test_same_name_with_another_birth_date_is_not_matched(practice) -> None:
    result = match_patient(
        practice=practice, patient_id="", patient_name="COTE^ZOE", birth_date=dt.date(1988, 3, 15)
    )
    assert not result.matched
    assert result.method == ""
    assert "no patient with this name and date of birth" in result.reason
    assert [(c["chart_number"], c["why"]) for c in result.candidates] == [
        ("1001", "same name, different date of birth")
    ]
    assert result.candidates[0]["birth_date"] == "1988-03-14"


def test_other_patients_born_that_day_are_offered_as_candidates(practice) -> None:
    result = match_patient(
        practice=practice,
        patient_id="",
        patient_name="GAGNON^NOELLE",
        birth_date=dt.date(1958, 12, 25),
    )
    assert not result.matched
    assert [(c["chart_number"], c["why"]) for c in result.candidates] == [
        ("1006", "same date of birth")
    ]


def test_two_patients_with_the_same_name_and_birth_date_are_not_guessed(practice) -> None:
    twin = Patient.objects.create(
        practice=practice, chart_number="2001", family_name="Cote", given_name="Zoe",
        birth_date=ZOE_DOB,
    )  # fmt: skip
    result = match_patient(
        practice=practice, patient_id="", patient_name="Côté^Zoé", birth_date=ZOE_DOB
    )
    assert not result.matched
    assert "2 patients share this name and date of birth" in result.reason
    assert sorted(c["id"] for c in result.candidates) == sorted([zoe(practice).pk, twin.pk])


def test_no_birth_date_needs_review_with_the_candidates(practice) -> None:
    result = match_patient(
        practice=practice, patient_id="", patient_name="COTE^ZOE", birth_date=None
    )
    assert not result.matched
    assert "no birth date" in result.reason
    assert [c["chart_number"] for c in result.candidates] == ["1001"]


def test_no_patient_id_and_no_name_is_not_matched(practice) -> None:
    result = match_patient(practice=practice, patient_id="", patient_name="", birth_date=ZOE_DOB)
    assert not result.matched
    assert result.candidates == []


def test_middle_name_sent_by_the_device_is_dropped(practice) -> None:
    for dicom_name in ("COTE^ZOE^MARIE", "COTE^ZOE MARIE"):
        result = match_patient(
            practice=practice, patient_id="", patient_name=dicom_name, birth_date=ZOE_DOB
        )
        assert result.patient == zoe(practice), dicom_name


def test_middle_name_on_the_chart_only_still_matches(practice) -> None:
    patient = zoe(practice)
    patient.given_name = "Zoé Marie"
    patient.save()
    result = match_patient(
        practice=practice, patient_id="", patient_name="COTE^ZOE", birth_date=ZOE_DOB
    )
    assert result.patient == patient


def test_first_given_name_must_still_agree(practice) -> None:
    result = match_patient(
        practice=practice, patient_id="", patient_name="COTE^MARIE^ZOE", birth_date=ZOE_DOB
    )
    assert not result.matched


def test_another_practices_patients_never_match(practice) -> None:
    other = Practice.objects.create(name="Clinique Rivière", ae_title="RIVIERE")
    roy = Patient.objects.create(
        practice=other, chart_number="9001", family_name="Roy", given_name="Marc",
        birth_date=ZOE_DOB,
    )  # fmt: skip
    Patient.objects.create(
        practice=other, chart_number="1001", family_name="Roy", given_name="Julie",
        birth_date=dt.date(1990, 1, 1),
    )  # fmt: skip

    # In the demo practice: neither the other chart number nor the other name+DOB.
    result = match_patient(
        practice=practice, patient_id="9001", patient_name="ROY^MARC", birth_date=ZOE_DOB
    )
    assert not result.matched
    assert roy.pk not in [c["id"] for c in result.candidates]
    assert [c["chart_number"] for c in result.candidates] == ["1001"]  # Côté, same DOB

    # In the other practice: chart 1001 is Julie Roy there, never Zoé Côté.
    result = match_patient(
        practice=other, patient_id="1001", patient_name="COTE^ZOE", birth_date=ZOE_DOB
    )
    assert (result.patient.family_name, result.patient.given_name) == ("Roy", "Julie")
    result = match_patient(
        practice=other, patient_id="", patient_name="COTE^ZOE", birth_date=ZOE_DOB
    )
    assert not result.matched
    assert {c["id"] for c in result.candidates} == {roy.pk}  # only their own same-DOB chart


def test_every_attempt_is_logged_with_its_outcome(practice, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="patients.matching"):
        match_patient(practice=practice, patient_id="", patient_name="COTE^ZOE", birth_date=ZOE_DOB)
        match_patient(practice=practice, patient_id="", patient_name="X^Y", birth_date=None)
    messages = [r.getMessage() for r in caplog.records if r.name == "patients.matching"]
    assert len(messages) == 2
    assert "-> 1001 (name and date of birth)" in messages[0]
    assert "NO MATCH" in messages[1]
