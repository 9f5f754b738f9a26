"""Query/Retrieve matching and the C-FIND response stream, without a socket."""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom import Dataset
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from dicomnet.dimse import status
from dicomnet.models import DicomInstance, DicomSeries, DicomStudy
from dicomnet.qr.matching import (
    MalformedIdentifier,
    matching_instances,
    matching_series,
    matching_studies,
    parse_identifier,
)
from dicomnet.qr.scp import answer_find
from patients.models import Practice


def identifier(**keys) -> Dataset:
    """An identifier as it comes off the wire: raw values, decoded (and checked) when read."""
    ds = Dataset()
    for keyword, value in keys.items():
        tag = Tag(tag_for_keyword(keyword))
        text = "\\".join(value) if isinstance(value, list) else value
        data = text.encode("latin-1")
        data += b" " if len(data) % 2 else b""
        ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(data), data, 0, False, True)
    ds.set_original_encoding(False, True, ["iso8859"])
    return ds


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        ({}, "QueryRetrieveLevel"),
        ({"QueryRetrieveLevel": "FRAME"}, "QueryRetrieveLevel"),
        ({"QueryRetrieveLevel": "STUDY", "StudyDate": "20241315"}, "not a date"),
        ({"QueryRetrieveLevel": "STUDY", "StudyTime": "25"}, "not a time"),
        ({"QueryRetrieveLevel": "STUDY", "StudyDate": "-"}, "empty range"),
        ({"QueryRetrieveLevel": "SERIES", "SeriesNumber": "x"}, "SeriesNumber"),
    ],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR")
def test_malformed_identifiers(keys, why):
    with pytest.raises(MalformedIdentifier, match=why):
        parse_identifier(identifier(**keys), patient_root=True)


def test_study_root_has_no_patient_level():
    with pytest.raises(MalformedIdentifier, match="PATIENT"):
        parse_identifier(identifier(QueryRetrieveLevel="PATIENT"), patient_root=False)


@pytest.fixture
def archive(db):
    mine = Practice.objects.create(name="Mine", ae_title="MINE")
    other = Practice.objects.create(name="Other", ae_title="OTHER")

    def study(practice, uid, name, date, modality="CT", **extra) -> DicomStudy:
        return DicomStudy.objects.create(
            practice=practice, study_instance_uid=uid, patient_name=name, study_date=date,
            modality=modality, patient_id=extra.pop("patient_id", uid), **extra,
        )  # fmt: skip

    zoe = study(mine, "1.1", "Côté^Zoé", dt.date(2024, 1, 15), "CT\\PX", accession_number="A1")
    study(mine, "1.2", "Lévesque^Geneviève", dt.date(2023, 3, 1), "IO", study_time=dt.time(9))
    study(mine, "1.3", "Tremblay^Marc", dt.date(2024, 6, 10), "PX")
    study(other, "2.1", "Côté^Zoé", dt.date(2024, 1, 15))
    series = DicomSeries.objects.create(
        practice=mine, study=zoe, series_instance_uid="1.1.1", modality="CT", series_number=3
    )
    for number, version in ((1, 1), (2, 1), (2, 2)):
        DicomInstance.objects.create(
            practice=mine, study=zoe, series=series, sop_instance_uid=f"1.1.1.{number}",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2", instance_number=number,
            version=version, sha256="x", state=DicomInstance.State.PROCESSED,
        )  # fmt: skip
    return mine


def uids(practice, **keys) -> set[str]:
    query = parse_identifier(identifier(QueryRetrieveLevel="STUDY", **keys), patient_root=False)
    return {
        uid
        for studies in matching_studies(query, practice_id=practice.pk)
        for uid in studies.values_list("study_instance_uid", flat=True)
    }


def test_study_matching_is_scoped_to_the_practice(archive):
    assert uids(archive, PatientName="cote*") == {"1.1"}
    assert uids(archive) == {"1.1", "1.2", "1.3"}


def test_date_ranges_lists_and_wildcards(archive):
    assert uids(archive, StudyDate="20240101-") == {"1.1", "1.3"}
    assert uids(archive, StudyDate="-20231231") == {"1.2"}
    assert uids(archive, StudyDate="20240115") == {"1.1"}
    assert uids(archive, StudyDate="20240101-20240131", PatientName="TREMBLAY") == set()
    assert uids(archive, StudyInstanceUID=["1.2", "1.3", "2.1"]) == {"1.2", "1.3"}
    assert uids(archive, AccessionNumber="A?") == {"1.1"}
    # Case-sensitive outside PatientName, on SQLite (whose LIKE ignores case) as on PostgreSQL.
    assert uids(archive, AccessionNumber="A*") == {"1.1"}
    assert uids(archive, AccessionNumber="a*") == set()
    assert uids(archive, StudyTime="0800-1000") == {"1.2"}


def test_modalities_in_study_matches_any_listed(archive):
    assert uids(archive, ModalitiesInStudy="PX") == {"1.1", "1.3"}
    assert uids(archive, ModalitiesInStudy=["IO", "CT"]) == {"1.1", "1.2"}
    assert uids(archive, ModalitiesInStudy="P") == set()
    assert uids(archive, ModalitiesInStudy="ct") == set()


def test_series_and_instances_follow_the_study_keys(archive):
    query = parse_identifier(
        identifier(QueryRetrieveLevel="IMAGE", PatientName="côté", SeriesNumber="3"),
        patient_root=True,
    )
    assert sum(qs.count() for qs in matching_series(query, practice_id=archive.pk)) == 1
    instances = matching_instances(query, practice_id=archive.pk)
    assert [(i.sop_instance_uid, i.version) for i in instances] == [
        ("1.1.1.1", 1),
        ("1.1.1.2", 2),  # the latest version only
    ]


def stream(practice, cancel_after: int | None = None, **keys):
    sent = []

    def is_cancelled() -> bool:
        return cancel_after is not None and len(sent) >= cancel_after

    for status_code, answer in answer_find(
        lambda: identifier(**keys),
        practice_id=practice.pk,
        patient_root=True,
        character_set="ISO_IR 100",
        calling_ae="CARESTREAM",
        retrieve_ae="NEXREL-CRM",
        is_cancelled=is_cancelled,
    ):
        sent.append((status_code, answer))
    return sent


def test_find_answers_the_keys_asked_in_the_device_character_set(archive):
    (pending,) = stream(
        archive, QueryRetrieveLevel="STUDY", PatientName="cote*", NumberOfStudyRelatedSeries="",
        ModalitiesInStudy="", ReferringPhysicianName="", RetrieveAETitle="",
    )  # fmt: skip
    code, answer = pending
    assert code == status.PENDING
    assert answer.SpecificCharacterSet == "ISO_IR 100"
    assert answer.PatientName == "Côté^Zoé"
    assert answer.StudyInstanceUID == "1.1"  # the unique key, though not asked
    assert list(answer.ModalitiesInStudy) == ["CT", "PX"]
    assert answer.NumberOfStudyRelatedSeries == 0
    assert "ReferringPhysicianName" in answer and not answer.ReferringPhysicianName
    assert answer.RetrieveAETitle == "NEXREL-CRM"
    assert "StudyDate" not in answer


def test_find_patient_level_groups_studies(archive):
    answers = stream(archive, QueryRetrieveLevel="PATIENT", PatientID="1.*")
    assert len(answers) == 3


def test_cancel_ends_the_stream_with_fe00(archive):
    answers = stream(archive, cancel_after=1, QueryRetrieveLevel="STUDY")
    assert [code for code, _ in answers] == [status.PENDING, status.CANCEL]


def test_malformed_and_failing_queries(archive, monkeypatch, caplog):
    answers = stream(archive, QueryRetrieveLevel="STUDY", StudyDate="2024")
    assert answers == [(status.IDENTIFIER_DOES_NOT_MATCH, None)]

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("dicomnet.qr.scp.level_answers", broken)
    answers = stream(archive, QueryRetrieveLevel="STUDY")
    assert answers == [(status.FIND_UNABLE_TO_PROCESS, None)]
    assert "database gone" in caplog.text


def test_retrieve_counts_then_stops_on_cancel(archive, monkeypatch):
    from dicomnet.qr import scp

    monkeypatch.setattr(scp, "load_dataset", lambda instance: Dataset())
    query = parse_identifier(identifier(QueryRetrieveLevel="STUDY"), patient_root=False)
    instances = matching_instances(query, practice_id=archive.pk)
    calls = iter([False, True])
    sent = list(scp._send(instances, lambda: next(calls), "C-GET"))
    assert sent[0] == 2  # the number of sub-operations first
    assert [code for code, _ in sent[1:]] == [status.PENDING, status.CANCEL]
