"""dicomnet.ingest.parsing: reading headers, refusing bad bytes and bad UIDs, indexed fields."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from dicomnet.ingest.parsing import (
    InvalidUids,
    UnreadableDicom,
    check_uids,
    header_fields,
    json_metadata,
    read_header,
)
from tests import dicom_samples
from tests.fixtures import PYDICOM_TEST_FILES

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

INTRAORAL = "1.2.840.10008.5.1.4.1.1.1.3"
UID_64 = "1.2.826.0.1.3680043.10.543." + "1" * 37


def intraoral(**elements) -> Dataset:
    """A small (8×8) intra-oral X-ray of chart 1001, without study date or time, and with
    `elements` set on top."""
    return dicom_samples.intraoral(
        patient_id="1001",
        patient_name="Tremblay^Chloé",
        study_date="",
        study_time="",
        size=8,
        **elements,
    )


def saved(ds: Dataset, tmp_path: Path, name: str = "object.dcm") -> Path:
    return dicom_samples.write(ds, tmp_path / name)


# --- read_header -------------------------------------------------------------------------


def test_read_header_reads_the_header_and_leaves_pixels_out() -> None:
    ds = read_header(PYDICOM_TEST_FILES / "CT_small.dcm")
    assert ds.SOPInstanceUID == "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    assert str(ds.PatientName) == "CompressedSamples^CT1"
    assert ds.Rows == 128
    assert "PixelData" not in ds


@pytest.mark.parametrize("name", ["image_dfl.dcm", "MR_truncated.dcm", "rtdose_rle.dcm"])
def test_read_header_accepts_complete_headers(name: str) -> None:
    # Deflated offsets don't map to file offsets; truncated *pixel data* is the preview's
    # problem (no preview), not the header's.
    assert read_header(PYDICOM_TEST_FILES / name).SOPInstanceUID


def test_read_header_accepts_a_deflated_file_it_wrote_itself(tmp_path: Path) -> None:
    ds = intraoral(PatientName="Côté^Zoé", SpecificCharacterSet="ISO_IR 192")
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = saved(ds, tmp_path)
    assert read_header(path).PatientName == "Côté^Zoé"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello, this is not DICOM\n" * 40,
        bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
    ],
    ids=["empty", "text", "random"],
)
def test_read_header_refuses_garbage(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.dcm"
    path.write_bytes(content)
    with pytest.raises(UnreadableDicom, match="not a readable DICOM file"):
        read_header(path)


@pytest.mark.parametrize("seed", range(6))
def test_garbage_after_a_dicom_preamble_never_passes_the_ingest_checks(
    tmp_path: Path, seed: int
) -> None:
    # pydicom may make a dataset of a few junk elements out of it; then the UIDs refuse it.
    rng = np.random.default_rng(seed)
    path = tmp_path / "garbage.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + rng.integers(0, 256, 3000, "u1").tobytes())
    with pytest.raises((UnreadableDicom, InvalidUids)):
        check_uids(read_header(path))


def test_read_header_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableDicom):
        read_header(tmp_path / "nowhere.dcm")


# Offsets inside CT_small.dcm: the file meta, right after it, and inside header elements.
@pytest.mark.parametrize("length", [140, 200, 340, 370, 500, 1000, 2000, 3300, 3900, 6000])
def test_read_header_refuses_a_truncated_file(tmp_path: Path, length: int) -> None:
    data = (PYDICOM_TEST_FILES / "CT_small.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:length])
    with pytest.raises(UnreadableDicom, match="not a readable DICOM (file|dataset)"):
        read_header(path)


def test_read_header_refuses_an_object_cut_inside_the_patient_name(tmp_path: Path) -> None:
    data = saved(intraoral(PatientName="Lévesque^Geneviève"), tmp_path).read_bytes()
    cut = data.index("Lévesque".encode("latin-1")) + 3
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:cut])
    with pytest.raises(UnreadableDicom, match="truncated"):
        read_header(path)


def test_read_header_refuses_an_object_cut_inside_an_element_header(tmp_path: Path) -> None:
    path = saved(intraoral(), tmp_path)
    data = path.read_bytes()
    cut = data.index(b"\xe0\x7f\x10\x00") + 5  # 5 bytes into the Pixel Data element header
    path.write_bytes(data[:cut])
    with pytest.raises(UnreadableDicom, match="truncated"):
        read_header(path)


# --- check_uids --------------------------------------------------------------------------


def test_check_uids_accepts_valid_uids_matching_the_command() -> None:
    ds = intraoral(SOPInstanceUID=UID_64)  # 64 characters: the longest valid UID
    untouched = copy.deepcopy(ds)
    assert (
        check_uids(ds, expected_sop_instance_uid=UID_64, expected_sop_class_uid=INTRAORAL) is None
    )
    assert ds == untouched
    # One character more, the same data set and command are refused: the check is real.
    ds.SOPInstanceUID = UID_64 + "1"
    with pytest.raises(InvalidUids, match="SOPInstanceUID"):
        check_uids(ds, expected_sop_instance_uid=UID_64 + "1", expected_sop_class_uid=INTRAORAL)


@pytest.mark.parametrize(
    "keyword", ["SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"]
)
@pytest.mark.parametrize(
    "bad",
    ["", "1.2.abc", "1.2.", ".1.2", "1..2", "1.2 .3", "1.2.3/../../etc", UID_64 + "1"],
    ids=["empty", "letters", "trailing-dot", "leading-dot", "empty-part", "space", "path", "65"],
)
def test_check_uids_refuses_invalid_uids(keyword: str, bad: str) -> None:
    ds = intraoral()
    setattr(ds, keyword, bad)
    with pytest.raises(InvalidUids, match=keyword):
        check_uids(ds)


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_check_uids_refuses_a_missing_uid(keyword: str) -> None:
    ds = intraoral()
    delattr(ds, keyword)
    with pytest.raises(InvalidUids, match=f"{keyword} '' is missing"):
        check_uids(ds)


def test_check_uids_refuses_an_instance_uid_other_than_the_commands() -> None:
    ds = intraoral()
    with pytest.raises(InvalidUids, match="SOPInstanceUID .* differs from the command's 1.2.3"):
        check_uids(ds, expected_sop_instance_uid="1.2.3", expected_sop_class_uid=INTRAORAL)


def test_check_uids_refuses_a_class_uid_other_than_the_commands() -> None:
    ds = intraoral()
    with pytest.raises(InvalidUids, match="SOPClassUID .* differs"):
        check_uids(
            ds,
            expected_sop_instance_uid=ds.SOPInstanceUID,
            expected_sop_class_uid="1.2.840.10008.5.1.4.1.1.7",
        )


# --- header_fields -----------------------------------------------------------------------

FRENCH_NAMES = ["Côté^Zoé", "Lévesque^Geneviève", "Saint-Pierre^François", "Gagnon^Noël"]


@pytest.mark.parametrize("name", FRENCH_NAMES)
@pytest.mark.parametrize(("charset", "codec"), [("ISO_IR 192", "utf-8"), ("ISO_IR 100", "latin-1")])
def test_accented_names_are_decoded_by_character_set(
    tmp_path: Path, name: str, charset: str, codec: str
) -> None:
    path = saved(intraoral(SpecificCharacterSet=charset, PatientName=name), tmp_path)
    assert name.encode(codec) in path.read_bytes()  # really written in that encoding
    header = header_fields(read_header(path))
    assert header.patient_name == name


def test_study_fields_dates_and_times(tmp_path: Path) -> None:
    ds = intraoral(
        PatientBirthDate="19880314",
        PatientSex="F",
        StudyDate="20240315",
        StudyTime="101530.123456",
        AccessionNumber="ACC-42",
        StudyDescription="Bitewings",
        SeriesNumber="3",
        SeriesDescription="BW left",
        BodyPartExamined="JAW",
        InstanceNumber="7",
    )
    header = header_fields(read_header(saved(ds, tmp_path)))
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.sop_class_uid == INTRAORAL
    assert header.study_instance_uid == ds.StudyInstanceUID
    assert header.series_instance_uid == ds.SeriesInstanceUID
    assert header.transfer_syntax_uid == ExplicitVRLittleEndian
    assert header.patient_id == "1001"
    assert header.patient_birth_date == dt.date(1988, 3, 14)
    assert header.patient_sex == "F"
    assert header.study_date == dt.date(2024, 3, 15)
    assert header.study_time == dt.time(10, 15, 30, 123456)  # the fraction is kept
    assert header.accession_number == "ACC-42"
    assert header.study_description == "Bitewings"
    assert header.modality == "IO"
    assert (header.series_number, header.instance_number) == (3, 7)
    assert header.series_description == "BW left"
    assert header.body_part_examined == "JAW"
    assert (header.rows, header.columns, header.frames) == (8, 8, 1)
    assert header.scheduled_step_ids == ()


@pytest.mark.parametrize(
    ("date", "time", "expected_date", "expected_time"),
    [
        ("20240315", "1015", dt.date(2024, 3, 15), dt.time(10, 15)),
        ("20240315", "10", dt.date(2024, 3, 15), dt.time(10, 0)),
        ("2024.03.15", "10:15:30", dt.date(2024, 3, 15), dt.time(10, 15, 30)),  # ACR-NEMA
        ("20240315", "235960", dt.date(2024, 3, 15), dt.time(23, 59, 59)),  # leap second
        ("20241345", "2561", None, None),
        ("", "", None, None),
    ],
)
def test_dates_and_times_in_their_various_forms(
    tmp_path: Path, date, time, expected_date, expected_time
) -> None:
    ds = intraoral(StudyDate=date, StudyTime=time)
    header = header_fields(read_header(saved(ds, tmp_path)))
    assert (header.study_date, header.study_time) == (expected_date, expected_time)


def test_content_date_and_time_stand_in_for_missing_study_date(tmp_path: Path) -> None:
    ds = intraoral(ContentDate="20240316", ContentTime="0830")
    header = header_fields(read_header(saved(ds, tmp_path)))
    assert (header.study_date, header.study_time) == (dt.date(2024, 3, 16), dt.time(8, 30))


def test_multi_frame_count(tmp_path: Path) -> None:
    ds = intraoral()
    ds.set_pixel_data(np.zeros((12, 4, 4), dtype=np.uint8), "MONOCHROME2", 8)
    header = header_fields(read_header(saved(ds, tmp_path)))
    assert header.frames == 12


def test_unparseable_numbers_become_none_or_one() -> None:
    # badVR.dcm has Number of Frames "1A".
    header = header_fields(read_header(PYDICOM_TEST_FILES / "badVR.dcm"))
    assert header.frames == 1


def test_scheduled_step_ids_from_request_attributes(tmp_path: Path) -> None:
    items = []
    for step in ("SPS-1", "", "SPS-2"):
        item = Dataset()
        item.RequestedProcedureID = "RP-9"
        if step:
            item.ScheduledProcedureStepID = step
        items.append(item)
    ds = intraoral(RequestAttributesSequence=items)
    header = header_fields(read_header(saved(ds, tmp_path)))
    assert header.scheduled_step_ids == ("SPS-1", "SPS-2")


# --- json_metadata -----------------------------------------------------------------------


def test_json_metadata_is_dicom_json_without_bulk_values(tmp_path: Path) -> None:
    ds = intraoral(SpecificCharacterSet="ISO_IR 192", PatientName="Côté^Zoé")
    ds.add_new(0x00091010, "LO", "NEXREL TEST")
    ds.add_new(0x00091011, "OB", b"\x07" * 10_000)
    ds.add_new(0x00091012, "OB", b"\x07" * 16)
    meta = json_metadata(read_header(saved(ds, tmp_path)))

    assert meta["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Côté^Zoé"}]}
    assert meta["0020000D"] == {"vr": "UI", "Value": [ds.StudyInstanceUID]}
    assert meta["00091011"] == {"vr": "OB", "BulkDataURI": ""}  # bulk left out
    assert "InlineBinary" in meta["00091012"]  # small binary kept
    assert "7FE00010" not in meta  # no pixel data
    assert json.loads(json.dumps(meta)) == meta


def test_json_metadata_of_a_real_header_with_sequences_and_private_tags() -> None:
    meta = json_metadata(read_header(PYDICOM_TEST_FILES / "CT_small.dcm"))
    assert "_error" not in meta
    assert meta["00100010"]["Value"] == [{"Alphabetic": "CompressedSamples^CT1"}]
    assert meta["00101002"]["vr"] == "SQ"  # Other Patient IDs Sequence
    json.dumps(meta)


def test_json_metadata_reports_a_malformed_element_instead_of_raising() -> None:
    meta = json_metadata(read_header(PYDICOM_TEST_FILES / "badVR.dcm"))
    assert meta["_error"].startswith("metadata not serialisable")
    assert "1A" in meta["_error"]
