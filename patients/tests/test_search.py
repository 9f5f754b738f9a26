"""Patient search (patients.selectors.search_patients): name, chart, birth date, RAMQ card."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from patients.models import Patient
from patients.selectors import search_patients


def charts(practice, query: str) -> list[str]:
    return list(search_patients(practice, query).values_list("chart_number", flat=True))


def test_by_name_accent_and_case_insensitive_any_order(practice):
    assert charts(practice, "cote") == ["1001"]
    assert charts(practice, "ZOÉ côté") == ["1001"]
    assert charts(practice, "Côté Z") == ["1001"]
    assert charts(practice, "pierre") == ["1004"]  # Saint-Pierre: a later word of the name
    assert charts(practice, "st-pierre") == ["1004"]
    assert charts(practice, "zoe gagnon") == []


def test_by_chart_birth_date_and_health_card(practice):
    cote = Patient.objects.get(practice=practice, chart_number="1001")
    cote.health_card_number = "cotz 8803 1412"
    cote.full_clean()
    cote.save()
    cote.refresh_from_db()
    assert cote.health_card_number == "COTZ88031412"
    assert charts(practice, "1001") == ["1001"]
    assert charts(practice, "1988-03-14") == ["1001"]
    assert charts(practice, "14/03/1988") == ["1001"]
    assert charts(practice, "COTZ 8803 1412") == ["1001"]
    assert charts(practice, "cotz88031412") == ["1001"]


def test_health_card_is_validated(practice):
    patient = Patient.objects.get(practice=practice, chart_number="1001")
    for bad in ["COT 88031412", "COTZ8803141", "12345678ABCD"]:
        patient.health_card_number = bad
        with pytest.raises(ValidationError):
            patient.full_clean()


def test_folded_order_and_ranges_are_the_same_on_every_database(practice):
    """Byte-wise keys (patients/bytewise.py): an en_US.UTF-8 PostgreSQL, which skips spaces
    at first, would put "Cot Ezra" inside the range of "cote" and after "Côté Zoé"."""
    for chart, family, given in [("7001", "Cot", "Ezra"), ("7002", "Cyr", "Anne")]:
        Patient.objects.create(
            practice=practice, chart_number=chart, family_name=family, given_name=given
        )
    assert charts(practice, "cote") == ["1001"]
    assert charts(practice, "cot") == ["7001", "1001"]
    listed = Patient.objects.filter(chart_number__in=["1001", "7001", "7002"])
    assert [p.chart_number for p in listed] == ["7001", "1001", "7002"]  # Cot, Côté, Cyr


def test_other_practice_patients_are_never_found(practice, other_practice):
    assert charts(practice, "autre") == []
    assert charts(other_practice.practice, "autre") == ["1001"]


def test_patient_list_is_paginated(clinician_client, practice):
    Patient.objects.bulk_create([_patient(practice, i) for i in range(120)])
    first = clinician_client.get(reverse("patient_list"), {"q": "dupont"}).content.decode()
    assert first.count("Dupont, ") == 50 and 'rel="next"' in first
    last = clinician_client.get(reverse("patient_list"), {"q": "dupont", "page": 3})
    assert last.content.decode().count("Dupont, ") == 20


def _patient(practice, i: int) -> Patient:
    p = Patient(
        practice=practice,
        chart_number=f"9{i:05d}",
        family_name=["Dupont", "Côté", "Tremblay", "Gagnon", "Roy"][i % 5]
        if i >= 120
        else "Dupont",
        given_name=f"Prénom{i}",
        birth_date=dt.date(1950 + i % 60, 1 + i % 12, 1 + i % 28),
        health_card_number=f"DUPP{i:08d}",
    )
    p.fill_keys()
    return p


@pytest.mark.django_db
def test_every_search_uses_an_index_with_50000_patients(practice):
    """The plan, not the clock: each kind of search narrows on an index of patients.
    (The time is measured by bench/bench_search.py, in docs/benchmarks.md.)"""
    Patient.objects.bulk_create(
        [_patient(practice, i) for i in range(120, 50_120)], batch_size=5000
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    for query in ["cote", "prénom4711 roy", "900123", "1961-02-03", "DUPP00004711", ""]:
        qs = search_patients(practice, query)[:50]
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"EXPLAIN {sql}", params)
                plan = " / ".join(row[0].strip() for row in cursor.fetchall())
                assert "Seq Scan on patients_patient" not in plan, (query, plan)
                assert re.search(r"Index (Only )?Scan (on|using) patient", plan), (query, plan)
                continue
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " / ".join(row[-1] for row in cursor.fetchall())
        steps = plan.split(" / ")
        assert not [s for s in steps if s.startswith("SCAN patients_patient")], (query, plan)
        assert [s for s in steps if s.startswith("SEARCH patients_patient USING")], (query, plan)
    # every word starts a word of the name: Prénom47114 and Prénom47119 Roy, not Prénom4711 Côté
    assert charts(practice, "prénom4711 roy") == ["947114", "947119"]
