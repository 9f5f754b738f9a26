"""C-FIND answers streamed as matched, and kept encoded while their study is unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pynetdicom.dsutils import encode

from dicomnet.dimse import matching as dimse
from dicomnet.dimse import status
from dicomnet.models import DicomStudy
from dicomnet.qr.matching import parse_identifier
from dicomnet.qr.responses import build_answer, encoded_answer, level_answers
from dicomnet.qr.scp import answer_find
from dicomnet.tests.test_qr_matching import identifier
from patients.models import Practice

NAMES = ["Côté^Zoé", "COTE^Luc", "cote^Anne", "Côte^Marc", "Coté-Roy^Xavier", "Cotes^Yves",
         "Tremblay^Côté"]  # fmt: skip


@pytest.fixture
def practice(db) -> Practice:
    mine = Practice.objects.create(name="Mine", ae_title="MINE")
    other = Practice.objects.create(name="Other", ae_title="OTHER")
    for n, name in enumerate(NAMES):
        DicomStudy.objects.create(
            practice=mine, study_instance_uid=f"1.{n}", patient_name=name, patient_id=f"P{n}",
            study_date=dt.date(2024, 1, 1 + n), modality="IO", instance_count=1,
        )  # fmt: skip
        DicomStudy.objects.create(
            practice=other, study_instance_uid=f"2.{n}", patient_name=name, patient_id=f"P{n}"
        )
    return mine


def find(practice: Practice, *, cancel_after: int | None = None, implicit_vr=True, **keys):
    sent: list = []

    def is_cancelled() -> bool:
        return cancel_after is not None and len(sent) >= cancel_after

    for answer in answer_find(
        lambda: identifier(QueryRetrieveLevel="STUDY", **keys),
        practice_id=practice.pk,
        patient_root=False,
        character_set="ISO_IR 100",  # as ``identifier`` encodes the keys
        calling_ae="CARESTREAM",
        retrieve_ae="NEXREL-CRM",
        is_cancelled=is_cancelled,
        implicit_vr=implicit_vr,
    ):
        sent.append(answer)
    return sent


def names(practice: Practice, pattern: str) -> set[str]:
    found = find(practice, PatientName=pattern)
    assert all(code == status.PENDING for code, _ in found)
    return {str(answer.PatientName) for _, answer in found}


# PatientName key -> the names it finds: the semantics of dicomnet.dimse.matching, also
# checked on PostgreSQL (tests/integration/test_qr_names_postgres.py).
NAME_MATCHES = [
    # a family name alone is the whole family name, whatever the accents and case
    ("COTE", {"Côté^Zoé", "COTE^Luc", "cote^Anne", "Côte^Marc"}),
    ("côté", {"Côté^Zoé", "COTE^Luc", "cote^Anne", "Côte^Marc"}),
    ("cote^zoe", {"Côté^Zoé"}),
    ("cote*", set(NAMES) - {"Tremblay^Côté"}),
    ("Côté^*", {"Côté^Zoé", "COTE^Luc", "cote^Anne", "Côte^Marc", "Coté-Roy^Xavier"}),
    ("c?te^m*", {"Côte^Marc"}),
    ("*^côté", {"Tremblay^Côté"}),
    ("*^zo*", {"Côté^Zoé"}),
]


@pytest.mark.parametrize(("pattern", "expected"), NAME_MATCHES)
def test_patient_name_matching_is_unchanged_by_streaming(practice, pattern, expected):
    assert names(practice, pattern) == expected


def test_a_name_query_is_one_database_query_read_as_it_is_answered(practice, monkeypatch):
    """The matches are not collected first: cancelled after the first answer, the stream has
    decided one more name, not all seven."""
    decided: list[str] = []
    folded = dimse.folded_name

    def counting(stored: str) -> str:
        decided.append(stored)
        return folded(stored)

    monkeypatch.setattr(dimse, "folded_name", counting)
    with CaptureQueriesContext(connection) as queries:
        answers = find(practice, cancel_after=1, PatientName="cote*")
    assert [code for code, _ in answers] == [status.PENDING, status.CANCEL]
    assert len(decided) == 2
    assert len([q for q in queries if "dicomnet_dicomstudy" in q["sql"]]) == 1


def test_an_unchanged_study_is_answered_from_the_cache(practice):
    (first,) = find(practice, PatientName="cote^zoe", NumberOfStudyRelatedInstances="")
    (again,) = find(practice, PatientName="cote^zoe", NumberOfStudyRelatedInstances="")
    assert again[1] is first[1]  # the raw elements encoded once
    # Another transfer syntax is encoded for it.
    (explicit,) = find(
        practice, implicit_vr=False, PatientName="cote^zoe", NumberOfStudyRelatedInstances=""
    )
    assert explicit[1].original_encoding == (False, True)
    assert first[1].original_encoding == (True, True)


def test_a_changed_study_is_answered_anew_despite_the_cache(practice):
    (first,) = find(practice, PatientName="cote^zoe", NumberOfStudyRelatedInstances="")
    assert int(first[1].NumberOfStudyRelatedInstances) == 1
    # As the ingest pipeline counts: QuerySet.update, neither save() nor updated_at.
    DicomStudy.objects.filter(study_instance_uid="1.0").update(instance_count=7)
    (counted,) = find(practice, PatientName="cote^zoe", NumberOfStudyRelatedInstances="")
    assert int(counted[1].NumberOfStudyRelatedInstances) == 7
    study = DicomStudy.objects.get(study_instance_uid="1.0")
    study.patient_name = "Côté^Zoée"
    study.save()
    (renamed,) = find(practice, PatientName="cote^zoee", NumberOfStudyRelatedInstances="")
    assert str(renamed[1].PatientName) == "Côté^Zoée"


def test_kept_answers_are_the_bytes_a_fresh_answer_encodes_to(practice):
    query = parse_identifier(
        identifier(QueryRetrieveLevel="STUDY", PatientName="cote*", ModalitiesInStudy="",
                   StudyDate="", RetrieveAETitle="", ReferringPhysicianName=""),
        patient_root=False,
    )  # fmt: skip
    for values in level_answers(query, practice_id=practice.pk):
        for implicit_vr in (True, False):
            kwargs = {"query": query, "character_set": "ISO_IR 100", "retrieve_ae": "NEXREL"}
            kept = encoded_answer(values, implicit_vr=implicit_vr, **kwargs)
            fresh = build_answer(values, **kwargs)
            assert encode(kept, implicit_vr, True) == encode(fresh, implicit_vr, True)


def test_a_kept_answer_goes_out_as_its_own_bytes(practice, monkeypatch):
    from pynetdicom import service_class

    from dicomnet.dimse import encoded

    monkeypatch.setattr(service_class, "encode", service_class.encode)  # restored after
    encoded.install()  # as the listener does (dicomnet.net.listener.configure_pynetdicom)
    query = parse_identifier(
        identifier(QueryRetrieveLevel="STUDY", PatientName="cote^zoe", StudyDate=""),
        patient_root=False,
    )
    (values,) = level_answers(query, practice_id=practice.pk)
    kwargs = {"query": query, "character_set": "ISO_IR 192", "retrieve_ae": "NEXREL"}
    kept = encoded_answer(values, implicit_vr=True, **kwargs)
    fresh = build_answer(values, **kwargs)
    assert service_class.encode(kept, True, True) is kept.encoded
    assert kept.encoded == encode(fresh, True, True)
    # Asked in another encoding (or deflated), it is encoded again, correctly.
    assert service_class.encode(kept, False, True) == encode(fresh, False, True)
    assert service_class.encode(kept, True, True, True) == encode(fresh, True, True, True)
    assert service_class.encode(fresh, True, True) == encode(fresh, True, True)
