"""The shared C-FIND primitives (``dicomnet.dimse.matching``), table by table.

Each table row is a key as a device sends it and what it must match; the database rows
are real (DicomStudy, WorklistItem), so the Q objects are proven against SQLite too.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pydicom import Dataset
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from dicomnet.dimse import matching as m
from dicomnet.dimse.matching import MalformedIdentifier
from dicomnet.models import DicomStudy


def raw_identifier(encoding: str = "latin-1", **keys: str) -> Dataset:
    """An identifier as it comes off the wire: raw values, decoded when read."""
    ds = Dataset()
    for keyword, text in keys.items():
        tag = Tag(tag_for_keyword(keyword))
        data = text.encode(encoding)
        data += b" " if len(data) % 2 else b""
        ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(data), data, 0, False, True)
    ds.set_original_encoding(False, True, ["iso8859"])
    return ds


# ------------------------------------------------------------------------ times


@pytest.mark.parametrize(
    ("key", "low", "high"),
    [
        ("083015", dt.time(8, 30, 15), dt.time(8, 30, 15, 999_999)),
        ("0830", dt.time(8, 30), dt.time(8, 30, 59, 999_999)),
        ("08", dt.time(8), dt.time(8, 59, 59, 999_999)),
        ("083015.4", dt.time(8, 30, 15, 400_000), dt.time(8, 30, 15, 499_999)),
        ("083015.123456", dt.time(8, 30, 15, 123_456), dt.time(8, 30, 15, 123_456)),
        ("08:30:15", dt.time(8, 30, 15), dt.time(8, 30, 15, 999_999)),  # ACR-NEMA form
        ("235960", dt.time(23, 59, 59), dt.time(23, 59, 59, 999_999)),  # leap second
        ("235960.5", dt.time(23, 59, 59, 500_000), dt.time(23, 59, 59, 599_999)),
    ],
)
def test_time_bounds_follow_c_2_2_2_5(key, low, high):
    assert m.time_bounds(key) == (low, high)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("0800-0859", (dt.time(8), dt.time(8, 59, 59, 999_999))),
        ("083015-083015", (dt.time(8, 30, 15), dt.time(8, 30, 15, 999_999))),
        ("-0900", (None, dt.time(9, 0, 59, 999_999))),
        ("1700-", (dt.time(17), None)),
        ("235960-", (dt.time(23, 59, 59), None)),
    ],
)
def test_time_ranges_end_at_the_last_instant_of_their_upper_value(key, expected):
    assert m.time_range(key) == expected


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("8", "not a time"),
        ("0861", "not a time: out of range"),
        ("2500", "not a time: out of range"),
        ("083015.1234567", "not a time"),
        ("-", "empty range"),
        ("0800-0900-1000", "neither a single value nor a range"),
    ],
)
def test_bad_times_are_malformed(key, message):
    with pytest.raises(MalformedIdentifier, match=message):
        m.time_range(key)


# ------------------------------------------------------------------------ dates, date-times


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("20260105", (dt.date(2026, 1, 5), dt.date(2026, 1, 5))),
        ("20260105-20260107", (dt.date(2026, 1, 5), dt.date(2026, 1, 7))),
        ("-20260107", (None, dt.date(2026, 1, 7))),
        ("20260105-", (dt.date(2026, 1, 5), None)),
    ],
)
def test_date_ranges(key, expected):
    assert m.date_range(key) == expected


@pytest.mark.parametrize(("key", "message"), [("2026015", "not a date"), ("20261332", "no such")])
def test_bad_dates_are_malformed(key, message):
    with pytest.raises(MalformedIdentifier, match=message):
        m.date_range(key)


EST = dt.timezone(dt.timedelta(hours=-5))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("2026", (dt.datetime(2026, 1, 1), dt.datetime(2026, 12, 31, 23, 59, 59, 999_999))),
        ("202602", (dt.datetime(2026, 2, 1), dt.datetime(2026, 2, 28, 23, 59, 59, 999_999))),
        (
            "20260105083015",
            (dt.datetime(2026, 1, 5, 8, 30, 15), dt.datetime(2026, 1, 5, 8, 30, 15, 999_999)),
        ),
        (
            "202601050830-0500",
            (
                dt.datetime(2026, 1, 5, 8, 30, tzinfo=EST),
                dt.datetime(2026, 1, 5, 8, 30, 59, 999_999, tzinfo=EST),
            ),
        ),
        (
            "20260105-202601071800-0500",  # the range's "-" is not the offset's
            (dt.datetime(2026, 1, 5), dt.datetime(2026, 1, 7, 18, 0, 59, 999_999, tzinfo=EST)),
        ),
        ("20260105-", (dt.datetime(2026, 1, 5), None)),
        ("2026-2027", (dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 31, 23, 59, 59, 999_999))),
    ],
)
def test_datetime_ranges(key, expected):
    assert m.datetime_range(key) == expected


def test_date_and_time_keys_combine_into_one_datetime_range():
    zone = dt.timezone(dt.timedelta(hours=-5))
    low, high = m.date_time_range("20260105-20260107", "1000-1800", zone)
    assert low == dt.datetime(2026, 1, 5, 10, tzinfo=zone)
    assert high == dt.datetime(2026, 1, 7, 18, 0, 59, 999_999, tzinfo=zone)


# ------------------------------------------------------------------------ strings (in the database)


@pytest.fixture
def studies(db, practice):
    rows = {
        "CARE1": ("1.2.3.1", "IO\\PX", "Côté^Zoé"),
        "CARE2": ("1.2.3.2", "CT", "Bélanger^Étienne"),
        "PLAN1": ("1.2.3.3", "PX", "Saint-Pierre^François"),
        "VAT10": ("1.2.3.4", "DX\\IO", "Côté"),
    }
    for accession, (uid, modality, name) in rows.items():
        DicomStudy.objects.create(
            practice=practice,
            study_instance_uid=uid,
            accession_number=accession,
            modality=modality,
            patient_name=name,
        )
    return DicomStudy.objects.for_practice(practice)


def accessions(queryset) -> set[str]:
    return set(queryset.values_list("accession_number", flat=True))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {"CARE1", "CARE2", "PLAN1", "VAT10"}),  # universal
        (["*"], {"CARE1", "CARE2", "PLAN1", "VAT10"}),
        (["CARE1"], {"CARE1"}),
        (["CARE1", "PLAN1"], {"CARE1", "PLAN1"}),  # list matching
        (["CARE*"], {"CARE1", "CARE2"}),
        (["?LAN1"], {"PLAN1"}),
        (["VAT1?", "CARE2"], {"VAT10", "CARE2"}),  # a wildcard inside a multi-valued key
        (["PLAN*", "*10"], {"PLAN1", "VAT10"}),
        (["CARE1", "*"], {"CARE1", "CARE2", "PLAN1", "VAT10"}),
        (["care1"], set()),  # case-sensitive outside PN
    ],
)
def test_string_matching(studies, values, expected):
    assert accessions(studies.filter(m.string_q("accession_number", values))) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["IO"], {"CARE1", "VAT10"}),
        (["PX"], {"CARE1", "PLAN1"}),
        (["CT", "DX"], {"CARE2", "VAT10"}),
        (["P*"], {"CARE1", "PLAN1"}),
        (["?T"], {"CARE2"}),
        (["O"], set()),  # whole values only
    ],
)
def test_multivalued_field_matching(studies, values, expected):
    assert accessions(studies.filter(m.multivalued_field_q("modality", values))) == expected


def test_int_keys_refuse_non_numbers():
    with pytest.raises(MalformedIdentifier, match="not an integer"):
        m.int_q("series_number", ["1", "x"], "SeriesNumber")


# ------------------------------------------------------------------------ person names


@pytest.mark.parametrize(
    ("key", "stored", "matches"),
    [
        ("cote*", "Côté^Zoé", True),
        ("CÔTÉ*", "Cote^Zoe", True),
        ("*zoé", "Côté^Zoé", True),
        ("C?T?^Z*", "Côté^Zoé", True),
        ("Côté^Zoé", "COTE^ZOE", True),
        ("COTE", "Côté^Zoé", True),  # a family name alone: the family name
        ("Côté^", "Côté^Zoé", True),  # an empty given name is universal
        ("Côté^*", "Côté", True),  # "^*" also finds a patient without a given name
        ("*^Zoé", "^Zoé", True),  # "*^" also finds a patient without a family name
        ("*^Zoé", "Côté^Chloé", False),
        ("Cote^Marc", "Côté^Zoé", False),
        ("Saint", "Saint-Pierre^François", False),
        ("st-pierre*", "Saint-Pierre^François", True),
        ("Ste-Marie^Chloé", "Sainte Marie^Chloe", True),
        ("lev*", "Côté^Zoé", False),
        ("Côté^Zoé=コテ^ゾエ", "Cote^Zoe", True),  # only the alphabetic group is matched
    ],
)
def test_person_names_match_accent_and_case_insensitively(key, stored, matches):
    match = m.person_name_match(key)
    assert match is not None
    assert match(stored) is matches


@pytest.mark.parametrize("key", ["", "*", "**", "^*"])
def test_universal_person_name_has_no_check(key):
    assert m.person_name_match(key) is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("cote*", {"CARE1", "VAT10"}),
        ("COTE", {"CARE1", "VAT10"}),
        ("Côté^*", {"CARE1", "VAT10"}),
        ("Côté^Zoé", {"CARE1"}),
        ("bel*", {"CARE2"}),
        ("*zoe", {"CARE1"}),
        ("saint-pierre*", {"PLAN1"}),
    ],
)
def test_person_name_index_range_never_drops_a_match(studies, key, expected):
    """``key_q`` narrows on the folded key; the exact check then decides."""
    match = m.person_name_match(key)
    narrowed = studies.filter(match.key_q("patient_name_key"))
    found = {s.accession_number for s in narrowed if match(s.patient_name)}
    assert found == expected


# ------------------------------------------------------------------------ reading keys


def test_values_split_strip_and_treat_a_lone_star_as_universal():
    ds = raw_identifier(Modality="IO\\ PX ", AccessionNumber="*")
    assert m.values(ds, "Modality") == ["IO", "PX"]
    assert m.values(ds, "AccessionNumber") == []
    assert m.values(ds, "AccessionNumber", keep_star=True) == ["*"]
    assert m.values(ds, "PatientID") == []


def test_a_second_value_where_one_is_allowed_is_malformed():
    with pytest.raises(MalformedIdentifier, match="single value or a range"):
        m.single(raw_identifier(StudyDate="20260101\\20260102"), "StudyDate")


def test_a_sequence_as_a_string_key_is_malformed():
    ds = Dataset()
    ds.ReferencedStudySequence = [Dataset()]
    with pytest.raises(MalformedIdentifier, match="is a sequence"):
        m.values(ds, "ReferencedStudySequence")


@pytest.mark.parametrize(
    ("character_set", "encoding"), [("ISO_IR 100", "latin-1"), ("ISO_IR 192", "utf-8")]
)
def test_identifier_without_character_set_is_read_in_the_device_profile(character_set, encoding):
    ds = raw_identifier(encoding, PatientName="Côté^Zoé")
    identifier = m.read_identifier(lambda: ds, character_set)
    assert identifier.SpecificCharacterSet == character_set
    assert str(identifier.PatientName) == "Côté^Zoé"


def test_identifier_declaring_its_character_set_keeps_it():
    ds = raw_identifier("utf-8", PatientName="Côté^Zoé")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.set_original_encoding(False, True, ["utf8"])
    identifier = m.read_identifier(lambda: ds, "ISO_IR 100")
    assert str(identifier.PatientName) == "Côté^Zoé"


def test_an_identifier_pynetdicom_cannot_decode_is_malformed():
    def broken() -> Dataset:
        raise ValueError("truncated element")

    with pytest.raises(MalformedIdentifier, match="undecodable identifier: truncated element"):
        m.read_identifier(broken, "ISO_IR 192")
