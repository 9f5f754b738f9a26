"""DICOM person names as people read them, and match reasons in the reader's language."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils import translation

from patients.names import display_person_name
from patients.reasons import Reason, render_reason, render_stored


@pytest.mark.parametrize(
    ("pn", "shown"),
    [
        ("Lestrade^G", "Lestrade, G"),
        ("OB^^^^", "OB"),
        ("Côté^Zoé^Marie", "Côté, Zoé Marie"),
        ("Smith^John^^Dr^Jr", "Smith, Dr John Jr"),
        ("^Zoé", "Zoé"),
        ("Yamada^Tarou=山田^太郎", "Yamada, Tarou"),
        ("", ""),
        (None, ""),
    ],
)
def test_display_person_name(pn, shown) -> None:
    assert display_person_name(pn) == shown


def test_person_name_filter() -> None:
    html = Template("{% load dicom_names %}{{ pn|person_name }}").render(
        Context({"pn": "Lestrade^G"})
    )
    assert html == "Lestrade, G"


def test_reasons_follow_the_active_language() -> None:
    why = Reason("patient_id", {"patient_id": "1001"})
    assert why.english == "PatientID 1001 is chart number"
    with translation.override("fr"):
        assert why.text() == "le PatientID 1001 est le numéro de dossier"
        assert render_stored(why.stored()) == "le PatientID 1001 est le numéro de dossier"
        assert render_reason("same_name_other_dob", {}) == "même nom, autre date de naissance"
    with translation.override("en"):
        assert render_stored(why.stored()) == "PatientID 1001 is chart number"


def test_unknown_or_missing_code_shows_the_stored_text() -> None:
    assert render_stored({}, "as recorded") == "as recorded"
    assert render_stored({"code": "gone"}, "as recorded") == "as recorded"
    assert render_reason("patient_id", {}, "as recorded") == "as recorded"  # params missing
