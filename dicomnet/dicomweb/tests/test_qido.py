"""QIDO-RS (PS3.18 §10.6) over real processed studies: resources, matching keys, paging,
includefield, errors, the session, the media type, practice scoping and the access log."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dicomnet.models import DicomInstance
from patients.models import AccessLog, Patient
from tests.dicom_samples import ingest_dataset, ingest_processed, intraoral

DICOM_JSON = "application/dicom+json"


@dataclass
class Archive:
    january: DicomInstance  # Côté, CT, 2024-01-15 10:15, two instances in one series
    january_second: DicomInstance
    march: DicomInstance  # Côté, CT, 2024-03-20 14:10
    belanger: DicomInstance  # Bélanger, IO, 2024-02-10, accession ACC42
    other: DicomInstance  # practice B's Côté


@pytest.fixture
def archive(practice, other_practice) -> Archive:
    first = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", study_date="20240115",
        study_time="101500", instance_number=1,
    )  # fmt: skip
    second = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", study_date="20240115",
        study_time="101500", instance_number=2, study_uid=first.study.study_instance_uid,
        series_uid=first.series.series_instance_uid,
    )  # fmt: skip
    march = ingest_processed(
        practice, patient_id="1001", patient_name="Côté^Zoé", study_date="20240320",
        study_time="141000",
    )  # fmt: skip
    belanger = ingest_dataset(practice, intraoral(
        patient_id="1002", patient_name="Bélanger^Étienne", study_date="20240210",
        AccessionNumber="ACC42", StudyDescription="Bitewings",
    ))  # fmt: skip
    other = ingest_processed(
        other_practice.practice, patient_id="1001", patient_name="Côté^Zoé",
        study_date="20240115",
    )  # fmt: skip
    return Archive(first, second, march, belanger, other)


def get(client, url: str, **params):
    return client.get(f"/dicomweb/{url}", params, HTTP_ACCEPT=DICOM_JSON)


def value(answer: dict, tag: str):
    values = answer[tag].get("Value", [])
    return values[0] if len(values) == 1 else values


def study_uids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {value(a, "0020000D") for a in response.json()}


def uid(instance: DicomInstance) -> str:
    return instance.study.study_instance_uid


# ---------------------------------------------------------------------- studies


@pytest.mark.parametrize(
    "name", ["CÔTÉ*", "cote*", "?ot?*", "Côté", "COTE", "cote^zoe", "*^Zoé", "côté^z*"]
)
def test_patient_name_matches_folded_with_wildcards_and_family_alone(
    clinician_client, archive, name
):
    found = study_uids(get(clinician_client, "studies", PatientName=name))
    assert found == {uid(archive.january), uid(archive.march)}


def test_patient_name_by_tag_and_fuzzymatching(clinician_client, archive):
    by_tag = study_uids(get(clinician_client, "studies", **{"00100010": "cote*"}))
    fuzzy = study_uids(get(clinician_client, "studies", PatientName="cote", fuzzymatching="true"))
    assert by_tag == fuzzy == {uid(archive.january), uid(archive.march)}
    assert get(clinician_client, "studies", fuzzymatching="maybe").status_code == 400


def test_a_study_answer_carries_the_default_attributes_in_dicom_json(clinician_client, archive):
    response = get(clinician_client, "studies", PatientName="cote*", StudyDate="20240115")
    assert response.status_code == 200
    assert response["Content-Type"] == DICOM_JSON
    assert "Côté^Zoé".encode() in response.content  # UTF-8, accents intact, not \u-escaped
    [answer] = response.json()
    assert answer["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Côté^Zoé"}]}
    assert value(answer, "00100020") == "1001"
    assert value(answer, "00080020") == "20240115"
    assert value(answer, "00080030") == "101500"
    assert value(answer, "00080061") == "CT"
    assert value(answer, "00201206") == 1  # NumberOfStudyRelatedSeries
    assert value(answer, "00201208") == 2  # NumberOfStudyRelatedInstances
    assert value(answer, "00080056") == "ONLINE"
    study = uid(archive.january)
    assert value(answer, "00081190") == f"http://testserver/dicomweb/studies/{study}"
    for tag in ("00080050", "00080090", "00100030", "00100040", "00200010"):
        assert tag in answer  # AccessionNumber, ReferringPhysicianName, ..., StudyID: maybe empty
    assert answer["00080090"] == {"vr": "PN"}


def test_study_date_and_time_ranges(clinician_client, archive):
    january = get(clinician_client, "studies", StudyDate="20240101-20240131")
    assert study_uids(january) == {uid(archive.january)}
    since_february = get(clinician_client, "studies", StudyDate="20240201-")
    assert study_uids(since_february) == {uid(archive.march), uid(archive.belanger)}
    afternoon = get(clinician_client, "studies", StudyDate="-20241231", StudyTime="1400-1500")
    assert study_uids(afternoon) == {uid(archive.march)}


def test_study_uid_list_comma_separated_or_repeated(clinician_client, archive):
    wanted = {uid(archive.january), uid(archive.belanger)}
    listed = get(clinician_client, "studies", StudyInstanceUID=",".join(sorted(wanted)))
    repeated = get(clinician_client, "studies", StudyInstanceUID=sorted(wanted))
    assert study_uids(listed) == study_uids(repeated) == wanted


def test_modalities_in_study_and_accession_number(clinician_client, archive):
    assert study_uids(get(clinician_client, "studies", ModalitiesInStudy="IO")) == {
        uid(archive.belanger)
    }
    assert len(study_uids(get(clinician_client, "studies", ModalitiesInStudy="CT,IO"))) == 3
    assert study_uids(get(clinician_client, "studies", AccessionNumber="ACC42")) == {
        uid(archive.belanger)
    }


def test_limit_and_offset_page_through_the_matches(clinician_client, archive):
    every = get(clinician_client, "studies").json()
    assert len(every) == 3
    first = get(clinician_client, "studies", limit=2)
    assert "additional results" in first["Warning"]
    rest = get(clinician_client, "studies", limit=2, offset=2)
    assert "Warning" not in rest
    assert first.json() + rest.json() == every
    assert get(clinician_client, "studies", offset=3).status_code == 204
    for bad in ({"limit": "-1"}, {"limit": "ten"}, {"offset": "1.5"}):
        response = get(clinician_client, "studies", **bad)
        assert response.status_code == 400
        assert next(iter(bad)) in response.json()["detail"]


def test_includefield_adds_the_attributes_nexrel_holds(clinician_client, archive):
    by_keyword = get(
        clinician_client, "studies", AccessionNumber="ACC42", includefield="StudyDescription"
    )
    by_tag = get(clinician_client, "studies", AccessionNumber="ACC42", includefield="00081030")
    assert value(by_keyword.json()[0], "00081030") == "Bitewings"
    assert by_tag.json() == by_keyword.json()
    assert "00081030" not in get(clinician_client, "studies", AccessionNumber="ACC42").json()[0]

    not_held = get(
        clinician_client,
        "studies",
        AccessionNumber="ACC42",
        includefield="OperatorsName,StudyDescription",
    )
    assert "00081070" not in not_held.json()[0]
    assert "OperatorsName" in not_held["Warning"]

    series = get(clinician_client, f"studies/{uid(archive.belanger)}/series", includefield="all")
    assert "00180015" in series.json()[0]  # BodyPartExamined, not a default
    unknown = get(clinician_client, "studies", includefield="NoSuchKeyword")
    assert unknown.status_code == 400
    assert "NoSuchKeyword" in unknown.json()["detail"]


# ---------------------------------------------------------------------- series, instances


def test_series_of_a_study(clinician_client, archive):
    study = uid(archive.january)
    response = get(clinician_client, f"studies/{study}/series")
    assert response.status_code == 200
    [answer] = response.json()
    series = archive.january.series.series_instance_uid
    assert value(answer, "0020000E") == series
    assert value(answer, "00080060") == "CT"
    assert value(answer, "00201209") == 2  # NumberOfSeriesRelatedInstances
    assert "00200011" in answer  # SeriesNumber
    assert value(answer, "00081190") == (
        f"http://testserver/dicomweb/studies/{study}/series/{series}"
    )
    assert "00100010" not in answer  # the study's attributes belong to /series only


def test_all_series_take_study_and_series_keys(clinician_client, archive):
    response = get(clinician_client, "series", PatientName="cote*", Modality="CT")
    assert {value(a, "0020000E") for a in response.json()} == {
        archive.january.series.series_instance_uid,
        archive.march.series.series_instance_uid,
    }
    [belanger] = get(clinician_client, "series", Modality="IO").json()
    assert belanger["00100010"]["Value"] == [{"Alphabetic": "Bélanger^Étienne"}]
    assert value(belanger, "00080061") == "IO"  # study attributes too
    seriesuid = archive.belanger.series.series_instance_uid
    [by_uid] = get(clinician_client, "series", SeriesInstanceUID=seriesuid).json()
    assert value(by_uid, "0020000D") == uid(archive.belanger)


def test_instances_of_a_series_of_a_study_and_of_all(clinician_client, archive):
    study, series = uid(archive.january), archive.january.series.series_instance_uid
    response = get(clinician_client, f"studies/{study}/series/{series}/instances")
    assert response.status_code == 200
    answers = response.json()
    assert [value(a, "00200013") for a in answers] == [1, 2]
    first = answers[0]
    assert value(first, "00080018") == archive.january.sop_instance_uid
    assert value(first, "00080016") == archive.january.sop_class_uid
    assert value(first, "00280010") == archive.january.rows
    assert value(first, "00280011") == archive.january.columns
    assert value(first, "00081190") == (
        f"http://testserver/dicomweb/studies/{study}/series/{series}"
        f"/instances/{archive.january.sop_instance_uid}"
    )

    in_study = get(clinician_client, f"studies/{study}/instances").json()
    assert {value(a, "00080018") for a in in_study} == {
        archive.january.sop_instance_uid,
        archive.january_second.sop_instance_uid,
    }
    [one] = get(
        clinician_client, "instances", SOPInstanceUID=archive.belanger.sop_instance_uid
    ).json()
    assert value(one, "00080060") == "IO"
    [by_name] = get(
        clinician_client,
        "instances",
        PatientName="bel*",
        SOPClassUID=archive.belanger.sop_class_uid,
    ).json()
    assert value(by_name, "00080018") == archive.belanger.sop_instance_uid


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("url", "params", "named"),
    [
        ("studies", {"Bogus": "1"}, "Bogus"),
        ("studies", {"00091001": "x"}, "00091001"),
        ("studies", {"Modality": "CT"}, "Modality"),  # a series key, not at study level
        ("studies", {"ReferringPhysicianName": "x"}, "ReferringPhysicianName"),
        ("studies", {"StudyDate": "20241345"}, "StudyDate"),
        ("studies", {"StudyDate": "2024-01-01"}, "StudyDate"),
        ("series", {"SeriesNumber": "three"}, "SeriesNumber"),
        ("studies/1.2.*/series", {}, "1.2.*"),
    ],
)
def test_a_bad_search_is_400_naming_what(clinician_client, archive, url, params, named):
    response = get(clinician_client, url, **params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert named in response.json()["detail"]


def test_without_a_session_401_with_www_authenticate(client, archive):
    response = get(client, "studies", PatientName="cote*")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="Nexrel DICOMweb"'
    assert "detail" in response.json()


def test_a_user_without_practice_is_refused(admin_client, archive):
    assert get(admin_client, "studies").status_code == 403


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/dicom+json", 200),
        ("application/json", 200),
        ("*/*", 200),
        ("application/*", 200),
        ("application/dicom+json, application/json;q=0.5", 200),
        ("application/dicom+xml", 406),
        ('multipart/related; type="application/dicom"', 406),
        ("text/html", 406),
    ],
)
def test_accept(clinician_client, archive, accept, status):
    response = clinician_client.get("/dicomweb/studies", HTTP_ACCEPT=accept)
    assert response.status_code == status


def test_get_only(clinician_client, archive):
    # POST on /studies is STOW-RS (test_stow.py): without a multipart body, 415.
    assert clinician_client.post("/dicomweb/studies").status_code == 415
    assert clinician_client.put("/dicomweb/studies").status_code == 405
    assert clinician_client.post("/dicomweb/series").status_code == 405
    assert clinician_client.delete("/dicomweb/series").status_code == 405


def test_no_match_is_204_no_content(clinician_client, archive):
    response = get(clinician_client, "studies", PatientName="Nobody*")
    assert response.status_code == 204
    assert response.content == b""


# ---------------------------------------------------------------------- practice, access log


def test_another_practices_studies_are_never_matched(
    clinician_client, client_for, archive, other_practice
):
    mine = study_uids(get(clinician_client, "studies", PatientName="cote*"))
    assert uid(archive.other) not in mine
    theirs = uid(archive.other)
    assert get(clinician_client, f"studies/{theirs}/series").status_code == 204
    assert get(clinician_client, f"studies/{theirs}/instances").status_code == 204
    assert get(clinician_client, "instances", StudyInstanceUID=theirs).status_code == 204
    b_client = client_for(other_practice.user)
    assert study_uids(get(b_client, "studies", PatientName="cote*")) == {theirs}


def test_a_search_is_in_the_access_log(clinician_client, clinician, archive):
    zoe = Patient.objects.get(practice=clinician.practice, chart_number="1001")
    assert archive.january.study.patient == zoe
    before = AccessLog.objects.count()
    get(clinician_client, "studies", PatientName="cote*")
    [row] = AccessLog.objects.order_by("-pk")[: AccessLog.objects.count() - before]
    assert (row.user, row.patient, row.action, row.object_ref) == (
        clinician,
        zoe,
        "dicomweb_search",
        "qido:studies",
    )
    get(clinician_client, "studies", PatientName="Nobody*")
    nobody = AccessLog.objects.order_by("-pk").first()
    assert nobody is not None and nobody.patient is None and nobody.action == "dicomweb_search"
    study = uid(archive.belanger)
    get(clinician_client, f"studies/{study}/series")
    last = AccessLog.objects.order_by("-pk").first()
    assert last is not None
    assert last.object_ref == f"qido:studies/{study}/series"
    assert last.patient == Patient.objects.get(practice=clinician.practice, chart_number="1002")
