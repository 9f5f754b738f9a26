"""MWL C-FIND matching and answers, through the plain functions (no socket).

The demo practice (``practice`` fixture) has today one imaging item per device: Côté^Zoé on
CARESTREAM, Bélanger^Étienne on PLANMECA, Lévesque^Geneviève and Bouchard^Hélène on SIRONA,
Saint-Pierre^François and O'Connor-Pelletier^Jérôme on VATECH.
"""

from __future__ import annotations

import datetime as dt
import logging
from io import BytesIO

import pytest
from django.utils import timezone
from pydicom import Dataset
from pydicom.uid import generate_uid
from pynetdicom.dsutils import decode, encode

from dicomnet.dimse import status
from dicomnet.models import DicomServer
from patients.models import Patient, Practice
from worklist.models import WorklistItem, WorklistQuery
from worklist.mwl import answer_query
from worklist.mwl_matching import MalformedIdentifier, parse_identifier, select_items
from worklist.mwl_responses import build_response

# Wildcards and malformed values are what these identifiers are for: pydicom's warnings aside.
pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:Invalid value for VR")]

TODAY_NAMES = {
    "CARESTREAM": ["Côté^Zoé"],
    "PLANMECA": ["Bélanger^Étienne"],
    "SIRONA": ["Lévesque^Geneviève", "Bouchard^Hélène"],
    "VATECH": ["Saint-Pierre^François", "O'Connor-Pelletier^Jérôme"],
}
TODAY_IN_ORDER = [  # 08:00, 09:00, 10:00, 11:00, 14:00, 15:00
    "Côté^Zoé",
    "Bélanger^Étienne",
    "Lévesque^Geneviève",
    "Saint-Pierre^François",
    "Bouchard^Hélène",
    "O'Connor-Pelletier^Jérôme",
]


def identifier(step: dict | None = None, **top) -> Dataset:
    ds = Dataset()
    for keyword, value in top.items():
        setattr(ds, keyword, value)
    item = Dataset()
    for keyword, value in (step or {}).items():
        setattr(item, keyword, value)
    ds.ScheduledProcedureStepSequence = [item]
    return ds


def today() -> str:
    return timezone.localdate().strftime("%Y%m%d")


def names(ds: Dataset, practice: Practice, device: DicomServer | None = None) -> list[str]:
    query = parse_identifier(ds)
    return [i.patient_name for i in select_items(query, practice_id=practice.pk, device=device)]


def device(ae_title: str) -> DicomServer:
    return DicomServer.objects.get(ae_title=ae_title)


def add_item(practice: Practice, start: dt.datetime, *, name: str, **fields) -> WorklistItem:
    n = WorklistItem.objects.count() + 1
    family, given = name.split("^")
    patient, _ = Patient.objects.get_or_create(
        practice=practice,
        chart_number=f"T{n}",
        defaults={"family_name": family, "given_name": given},
    )
    values = dict(
        practice=practice,
        patient=patient,
        accession_number=f"T{n:08d}",
        requested_procedure_id=f"TRP{n:07d}",
        scheduled_procedure_step_id=f"TSPS{n:06d}",
        study_instance_uid=generate_uid(),
        modality="IO",
        scheduled_station_ae_title="DATES",
        scheduled_start=start,
        patient_name=name,
        patient_id=f"T{n}",
    )
    values.update(fields)
    return WorklistItem.objects.create(**values)


def local(*args) -> dt.datetime:
    return timezone.make_aware(dt.datetime(*args))


# ------------------------------------------------------------------ keys and wildcards


@pytest.mark.parametrize("station", list(TODAY_NAMES))
def test_one_station_day_query_finds_that_stations_items_in_order(practice, station):
    query = identifier(
        {"ScheduledStationAETitle": station, "ScheduledProcedureStepStartDate": today()}
    )
    assert names(query, practice) == TODAY_NAMES[station]


def test_empty_keys_and_empty_sequence_match_universally(practice):
    active = WorklistItem.objects.filter(status__in=["SCHEDULED", "IN_PROGRESS"])
    assert active.count() > len(sum(TODAY_NAMES.values(), []))  # other days too
    empty_keys = identifier(
        {"ScheduledStationAETitle": "", "Modality": "", "ScheduledProcedureStepStartDate": ""},
        PatientName="",
        PatientID="",
        AccessionNumber="",
    )
    assert len(names(empty_keys, practice)) == active.count()
    no_item = Dataset()
    no_item.ScheduledProcedureStepSequence = []
    assert len(names(no_item, practice)) == active.count()
    assert len(names(identifier(PatientName="*"), practice)) == active.count()


def test_modality_single_value_list_and_wildcards(practice):
    day = {"ScheduledProcedureStepStartDate": today()}
    by_modality = {
        m: sorted(
            WorklistItem.objects.filter(
                modality=m, scheduled_start__date=timezone.localdate()
            ).values_list("patient_name", flat=True)
        )
        for m in ("IO", "PX", "CT")
    }
    assert by_modality["PX"] == ["Lévesque^Geneviève"]
    assert names(identifier({**day, "Modality": "PX"}), practice) == ["Lévesque^Geneviève"]
    assert sorted(names(identifier({**day, "Modality": "?X"}), practice)) == by_modality["PX"]
    assert sorted(names(identifier({**day, "Modality": "C*"}), practice)) == by_modality["CT"]
    both = identifier({**day, "Modality": ["IO", "CT"]})
    assert sorted(names(both, practice)) == sorted(by_modality["IO"] + by_modality["CT"])
    assert names(identifier({**day, "Modality": "io"}), practice) == []  # CS: case matters


def test_station_ae_title_wildcard(practice):
    query = identifier(
        {"ScheduledStationAETitle": "S*A", "ScheduledProcedureStepStartDate": today()}
    )
    assert names(query, practice) == TODAY_NAMES["SIRONA"]


def test_patient_id_accession_and_procedure_ids(practice):
    zoe = WorklistItem.objects.get(
        patient_name="Côté^Zoé", scheduled_start__date=timezone.localdate()
    )
    day = {"ScheduledProcedureStepStartDate": today()}
    assert names(identifier(day, PatientID="1001"), practice) == ["Côté^Zoé"]
    assert names(identifier(day, PatientID="100?"), practice) == TODAY_IN_ORDER
    assert names(identifier(day, PatientID=["1001", "1003"]), practice) == [
        "Côté^Zoé",
        "Lévesque^Geneviève",
    ]
    assert names(identifier(day, PatientID="1001*"), practice) == ["Côté^Zoé"]
    assert names(identifier(AccessionNumber=zoe.accession_number), practice) == ["Côté^Zoé"]
    assert names(identifier(RequestedProcedureID=zoe.requested_procedure_id), practice) == [
        "Côté^Zoé"
    ]
    step = {"ScheduledProcedureStepID": zoe.scheduled_procedure_step_id}
    assert names(identifier(step), practice) == ["Côté^Zoé"]
    assert names(identifier(StudyInstanceUID=zoe.study_instance_uid), practice) == ["Côté^Zoé"]
    assert names(identifier(AccessionNumber="NX-none"), practice) == []


# ----------------------------------------------------------------------- patient names


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("cote*", ["Côté^Zoé"]),
        ("CÔTÉ*", ["Côté^Zoé"]),
        ("Côté^Zoé", ["Côté^Zoé"]),
        ("COTE^ZOE", ["Côté^Zoé"]),
        ("cote", ["Côté^Zoé"]),  # family name alone
        ("Côté^Zoé^^^", ["Côté^Zoé"]),  # empty components
        ("Côté^*", ["Côté^Zoé"]),
        ("*^zoé", ["Côté^Zoé"]),
        ("c?t?*", ["Côté^Zoé"]),
        ("Cote^Chloe", []),
        ("levesque*", ["Lévesque^Geneviève"]),
        ("SAINT-PIERRE", ["Saint-Pierre^François"]),
        ("St-Pierre^François", ["Saint-Pierre^François"]),  # particle spelled short
        ("Saint", []),  # not a family name of its own
        ("saint*", ["Saint-Pierre^François"]),
        ("o'connor-pelletier^jerome", ["O'Connor-Pelletier^Jérôme"]),
    ],
)
def test_patient_name_is_accent_and_case_insensitive(practice, pattern, expected):
    query = identifier({"ScheduledProcedureStepStartDate": today()}, PatientName=pattern)
    assert names(query, practice) == expected


def test_accented_query_finds_an_unaccented_name(practice):
    add_item(practice, local(2031, 1, 10, 9), name="GAGNE^ANDRE")
    assert names(identifier(PatientName="Gagné^André"), practice) == ["GAGNE^ANDRE"]
    assert names(identifier(PatientName="gagné*"), practice) == ["GAGNE^ANDRE"]


# ------------------------------------------------------------------- dates and times


@pytest.fixture
def dated(practice) -> Practice:
    """Four items on station DATES, in local time (America/Toronto)."""
    add_item(practice, local(2031, 1, 10, 9, 0), name="Un^Dix")
    add_item(practice, local(2031, 1, 11, 14, 30), name="Deux^Onze")
    add_item(practice, local(2031, 1, 12, 8, 0), name="Trois^Douze")
    add_item(practice, local(2031, 1, 13, 23, 30), name="Quatre^Treize")  # 04:30 UTC the 14th
    return practice


def on_dates(practice: Practice, date: str = "", time: str = "") -> list[str]:
    step = {"ScheduledStationAETitle": "DATES"}
    if date:
        step["ScheduledProcedureStepStartDate"] = date
    if time:
        step["ScheduledProcedureStepStartTime"] = time
    return [n.split("^")[0] for n in names(identifier(step), practice)]


def test_date_single_value_and_ranges(dated):
    assert on_dates(dated) == ["Un", "Deux", "Trois", "Quatre"]
    assert on_dates(dated, "20310111") == ["Deux"]
    assert on_dates(dated, "20310111-20310112") == ["Deux", "Trois"]
    assert on_dates(dated, "-20310111") == ["Un", "Deux"]
    assert on_dates(dated, "20310112-") == ["Trois", "Quatre"]
    assert on_dates(dated, "20310113") == ["Quatre"]  # the local date, not UTC's
    assert on_dates(dated, "20310114") == []
    assert on_dates(dated, "20310112-20310111") == []


def test_date_and_time_combine_into_one_datetime_range(dated):
    # From 10:00 on the 10th to 09:00 on the 12th (PS3.4 C.2.2.2.5.2).
    assert on_dates(dated, "20310110-20310112", "1000-0900") == ["Deux", "Trois"]
    assert on_dates(dated, "20310111", "1400-1500") == ["Deux"]
    assert on_dates(dated, "20310111", "0800-1200") == []
    assert on_dates(dated, "20310111", "14") == ["Deux"]  # the whole hour
    assert on_dates(dated, "20310111", "143000") == ["Deux"]
    assert on_dates(dated, "20310111", "1431") == []
    assert on_dates(dated, "20310110-", "2300-") == ["Deux", "Trois", "Quatre"]


def test_time_alone_matches_the_time_of_day(dated):
    assert on_dates(dated, time="0800-0900") == ["Un", "Trois"]
    assert on_dates(dated, time="2300-") == ["Quatre"]


@pytest.mark.parametrize(
    ("date", "time"),
    [
        ("2031-01-11", ""),
        ("20311301", ""),
        ("2031011", ""),
        ("-", ""),
        ("20310111", "25"),
        ("20310111", "1a00"),
        ("20310111", "08-09-10"),
    ],
)
def test_malformed_dates_and_times_are_refused(practice, date, time):
    step = {"ScheduledProcedureStepStartDate": date}
    if time:
        step["ScheduledProcedureStepStartTime"] = time
    with pytest.raises(MalformedIdentifier):
        parse_identifier(identifier(step))


def test_malformed_structures_are_refused(practice):
    two_items = identifier({"Modality": "IO"})
    two_items.ScheduledProcedureStepSequence.append(Dataset())
    with pytest.raises(MalformedIdentifier, match="more than one item"):
        parse_identifier(two_items)
    not_a_sequence = Dataset()
    not_a_sequence.add_new(0x00400100, "LO", "IO")
    with pytest.raises(MalformedIdentifier, match="not a sequence"):
        parse_identifier(not_a_sequence)


# --------------------------------------------------------------- status, quirk, practice


def test_step_status_defaults_to_scheduled_and_in_progress(practice):
    side, zoe = TODAY_NAMES["PLANMECA"][0], "Côté^Zoé"
    WorklistItem.objects.filter(patient_name=side).update(status="COMPLETED")
    WorklistItem.objects.filter(patient_name=zoe).update(status="IN_PROGRESS")
    day = {"ScheduledProcedureStepStartDate": today()}
    default = names(identifier({**day, "ScheduledProcedureStepStatus": ""}), practice)
    assert zoe in default and side not in default
    completed = names(identifier({**day, "ScheduledProcedureStepStatus": "COMPLETED"}), practice)
    assert completed == [side]
    assert names(identifier({**day, "ScheduledProcedureStepStatus": "STARTED"}), practice) == [zoe]
    everything = names(identifier({**day, "ScheduledProcedureStepStatus": "*"}), practice)
    assert zoe in everything and side in everything


def test_own_station_device_without_station_gets_only_its_own_items(practice):
    vatech, carestream = device("VATECH"), device("CARESTREAM")
    assert vatech.mwl_own_station_only and not carestream.mwl_own_station_only
    day = {"ScheduledProcedureStepStartDate": today()}
    assert names(identifier(day), practice, vatech) == TODAY_NAMES["VATECH"]
    assert (
        names(identifier({**day, "ScheduledStationAETitle": ""}), practice, vatech)
        == (TODAY_NAMES["VATECH"])
    )
    # A station the device names itself is honoured; a device without the quirk sees all.
    asked = identifier({**day, "ScheduledStationAETitle": "CARESTREAM"})
    assert names(asked, practice, vatech) == ["Côté^Zoé"]
    assert names(identifier(day), practice, carestream) == TODAY_IN_ORDER


def test_queries_are_scoped_to_the_practice(practice, other_practice):
    other = other_practice.practice
    add_item(other, local(2031, 1, 10, 9), name="Côté^Zoé", scheduled_station_ae_title="CARESTREAM")
    mine = add_item(practice, local(2031, 1, 10, 10), name="Côté^Zoé", accession_number="SAME")
    add_item(other, local(2031, 1, 10, 11), name="Autre^Patient", accession_number="SAME")
    query = identifier({"ScheduledProcedureStepStartDate": "20310110"}, PatientName="cote*")
    found = select_items(parse_identifier(query), practice_id=practice.pk, device=None)
    assert [i.pk for i in found] == [mine.pk]
    theirs = names(identifier({"ScheduledProcedureStepStartDate": "20310110"}), other)
    assert theirs == ["Côté^Zoé", "Autre^Patient"]


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("character_set", "codec"), [("ISO_IR 192", "utf-8"), ("ISO_IR 100", "latin-1")]
)
@pytest.mark.parametrize("implicit", [True, False])
def test_names_round_trip_in_both_character_sets(practice, character_set, codec, implicit):
    WorklistItem.objects.filter(patient_name="Côté^Zoé").update(
        performing_physician="Gauthier^Marie-Hélène"
    )
    query = identifier(
        {"ScheduledStationAETitle": "CARESTREAM", "ScheduledProcedureStepStartDate": today()}
    )
    parsed = parse_identifier(query)
    (item,) = select_items(parsed, practice_id=practice.pk, device=None)
    encoded = encode(build_response(item, parsed, character_set=character_set), implicit, True)
    assert "Côté^Zoé".encode(codec) in encoded
    assert "Gauthier^Marie-Hélène".encode(codec) in encoded
    other = "utf-8" if codec == "latin-1" else "latin-1"
    assert "Côté^Zoé".encode(other) not in encoded
    back = decode(BytesIO(encoded), implicit, True)
    assert back.SpecificCharacterSet == character_set
    assert back.PatientName == "Côté^Zoé"
    step = back.ScheduledProcedureStepSequence[0]
    assert step.ScheduledPerformingPhysicianName == "Gauthier^Marie-Hélène"


def test_response_has_the_return_keys_and_every_key_asked(practice):
    query = identifier(
        {
            "ScheduledStationAETitle": "CARESTREAM",
            "ScheduledProcedureStepStartDate": today(),
            "CommentsOnTheScheduledProcedureStep": "",
        },
        PatientComments="",
        OtherPatientIDs="",
        PatientName="",
    )
    parsed = parse_identifier(query)
    (item,) = select_items(parsed, practice_id=practice.pk, device=None)
    encoded = encode(build_response(item, parsed, character_set="ISO_IR 192"), True, True)
    ds = decode(BytesIO(encoded), True, True)
    local_start = timezone.localtime(item.scheduled_start)
    assert ds.PatientName == "Côté^Zoé" and ds.PatientID == "1001"
    assert ds.PatientBirthDate == "19880314" and ds.PatientSex == "F"
    assert ds.StudyInstanceUID == item.study_instance_uid
    assert ds.AccessionNumber == item.accession_number
    assert ds.RequestedProcedureID == item.requested_procedure_id
    assert ds.RequestedProcedureDescription == item.step_description
    assert ds.RequestedProcedureCodeSequence[0].CodeValue == "D0274"
    for type2 in ("ReferringPhysicianName", "ReferencedStudySequence", "PatientWeight"):
        assert type2 in ds and not ds[type2].value
    for asked in ("PatientComments", "OtherPatientIDs"):
        assert asked in ds
    step = ds.ScheduledProcedureStepSequence[0]
    assert step.ScheduledStationAETitle == "CARESTREAM"
    assert step.ScheduledProcedureStepStartDate == local_start.strftime("%Y%m%d") == today()
    assert step.ScheduledProcedureStepStartTime == "080000"
    assert step.Modality == "IO"
    assert step.ScheduledPerformingPhysicianName == "Dre Marie Gauthier"
    assert step.ScheduledProcedureStepDescription == item.step_description
    assert step.ScheduledProcedureStepID == item.scheduled_procedure_step_id
    assert step.ScheduledProcedureStepStatus == "SCHEDULED"
    assert step.ScheduledProcedureStepLocation == "OP-1"
    assert "ScheduledStationName" in step and "CommentsOnTheScheduledProcedureStep" in step


# ----------------------------------------------------------------- the whole query


def run(ds_or_reader, dev: DicomServer, *, cancel_after: int | None = None):
    responses = []

    def is_cancelled() -> bool:
        return cancel_after is not None and len(responses) >= cancel_after

    reader = ds_or_reader if callable(ds_or_reader) else (lambda: ds_or_reader)
    for code, ds in answer_query(
        reader,
        practice_id=dev.practice_id,
        device=dev,
        calling_ae=dev.ae_title,
        is_cancelled=is_cancelled,
    ):
        responses.append((code, ds))
    return responses


def test_query_is_recorded_and_items_marked_fetched(practice):
    sirona = device("SIRONA")
    query = identifier(
        {"ScheduledStationAETitle": "SIRONA", "ScheduledProcedureStepStartDate": today()}
    )
    responses = run(query, sirona)
    assert [code for code, _ in responses] == [status.PENDING, status.PENDING]
    assert [ds.PatientName for _, ds in responses] == TODAY_NAMES["SIRONA"]
    assert {ds.SpecificCharacterSet for _, ds in responses} == {"ISO_IR 100"}  # its profile
    record = WorklistQuery.objects.get()
    assert (record.device, record.calling_ae, record.result_count, record.status) == (
        sirona,
        "SIRONA",
        2,
        "success",
    )
    assert record.query["00400100"]["Value"][0]["00400001"]["Value"] == ["SIRONA"]
    assert record.duration_ms > 0
    accessions = [ds.AccessionNumber for _, ds in responses]
    fetched = WorklistItem.objects.filter(accession_number__in=accessions)
    first = {i.pk: i.first_fetched_at for i in fetched}
    assert all(i.fetched_by == "SIRONA" and i.last_fetched_at for i in fetched)
    assert not WorklistItem.objects.exclude(pk__in=first).exclude(first_fetched_at=None).exists()

    run(query, sirona)
    again = WorklistItem.objects.filter(pk__in=first)
    assert all(i.first_fetched_at == first[i.pk] < i.last_fetched_at for i in again)


@pytest.mark.parametrize(
    ("ae_title", "pattern", "codec", "expected"),
    [
        ("CARESTREAM", "CÔTÉ*", "utf-8", "Côté^Zoé"),  # pydicom alone would read "CÃ\x94TÃ\x89*"
        ("SIRONA", "Lév*", "latin-1", "Lévesque^Geneviève"),
    ],
)
def test_identifier_without_character_set_is_read_in_the_device_profiles(
    practice, ae_title, pattern, codec, expected
):
    query = identifier({"ScheduledProcedureStepStartDate": today()})
    query.add_new(0x00100010, "PN", pattern.encode(codec))  # raw bytes, no character set
    raw = encode(query, True, True)
    responses = run(lambda: decode(BytesIO(raw), True, True), device(ae_title))
    assert [ds.PatientName for _, ds in responses] == [expected]
    assert WorklistQuery.objects.get().query["00100010"]["Value"] == [{"Alphabetic": pattern}]


def test_cancel_stops_the_stream_with_fe00(practice):
    query = identifier({"ScheduledProcedureStepStartDate": today()})
    responses = run(query, device("CARESTREAM"), cancel_after=2)
    assert [code for code, _ in responses] == [status.PENDING, status.PENDING, status.CANCEL]
    record = WorklistQuery.objects.get()
    assert (record.result_count, record.status) == (2, "cancelled")
    assert WorklistItem.objects.exclude(first_fetched_at=None).count() == 2


def test_malformed_identifier_gets_a900_and_is_recorded(practice):
    bad = identifier({"ScheduledProcedureStepStartDate": "tomorrow"})
    assert run(bad, device("CARESTREAM")) == [(status.IDENTIFIER_DOES_NOT_MATCH, None)]

    def undecodable() -> Dataset:
        # An SPS sequence whose item declares 16 bytes and has 2.
        raw = b"\x40\x00\x00\x01\xff\xff\xff\xff\xfe\xff\x00\xe0\x10\x00\x00\x00xx"
        return decode(BytesIO(raw), True, True)

    assert run(undecodable, device("CARESTREAM")) == [(status.IDENTIFIER_DOES_NOT_MATCH, None)]
    records = list(WorklistQuery.objects.order_by("at", "pk"))
    assert [r.status.split(":")[0] for r in records] == ["malformed", "malformed"]
    assert "tomorrow" in records[0].status
    assert not WorklistItem.objects.exclude(first_fetched_at=None).exists()


def test_handler_error_gets_c311_logged_with_traceback(practice, caplog):
    def failing() -> bool:
        raise RuntimeError("cancel check broke")

    query = identifier({"ScheduledProcedureStepStartDate": today()})
    with caplog.at_level(logging.ERROR, logger="worklist.mwl"):
        responses = answer_query(
            lambda: query,
            practice_id=practice.pk,
            device=device("CARESTREAM"),
            calling_ae="CARESTREAM",
            is_cancelled=failing,
        )
        assert list(responses) == [(status.FIND_UNABLE_TO_PROCESS, None)]
    (failure,) = [r for r in caplog.records if r.exc_info]
    assert "failed" in failure.getMessage() and "cancel check broke" in str(failure.exc_info[1])
    assert WorklistQuery.objects.get().status == "failed"


def test_answers_follow_the_item_and_the_device_despite_the_cache(practice):
    query = identifier(
        {"ScheduledStationAETitle": "CARESTREAM", "ScheduledProcedureStepStartDate": today()}
    )
    (first,) = [ds for _, ds in run(query, device("CARESTREAM"))]
    assert (first.SpecificCharacterSet, first.PatientName) == ("ISO_IR 192", "Côté^Zoé")
    # Another device profile gets its own encoding, not the cached UTF-8 answer.
    (latin1,) = [ds for _, ds in run(query, device("SIRONA"))]
    assert latin1.SpecificCharacterSet == "ISO_IR 100"
    # A corrected name (or any other answered field) is answered at once.
    WorklistItem.objects.filter(accession_number=first.AccessionNumber).update(
        patient_name="Côté-Roy^Zoé", status="IN_PROGRESS"
    )
    (again,) = [ds for _, ds in run(query, device("CARESTREAM"))]
    assert again.PatientName == "Côté-Roy^Zoé"
    assert again.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "STARTED"
