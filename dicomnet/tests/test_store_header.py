"""dicomnet.ingest.parsing.read_store_header: what the C-STORE path reads of a header, with
read_header's checks (cut-off objects, the inflating budget, no read larger than the file,
undecodable UIDs) at less cost."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dicomnet.ingest import parsing
from dicomnet.ingest.parsing import (
    InvalidUids,
    UnreadableDicom,
    check_uids,
    read_header,
    read_store_header,
)
from tests import dicom_samples
from tests.fixtures import PYDICOM_TEST_FILES, ROOT
from tests.fuzzing import SEED_NAMES, mutate, mutation_strategy, seeds
from tests.integration import hostile

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

STORED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientName")


def outcome(read, path: Path) -> tuple[str, ...]:
    """What the listener makes of the file: the refusal, or what it stores of the header."""
    try:
        ds = read(path)
        check_uids(ds)
    except (UnreadableDicom, InvalidUids) as exc:
        return (type(exc).__name__,)
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    return (*(str(ds.get(keyword, "")) for keyword in STORED), syntax)


@pytest.fixture
def read_header_calls(monkeypatch) -> list[Path | str]:
    """The paths read_store_header leaves to read_header."""
    calls: list[Path | str] = []

    def counted(path: Path | str) -> Dataset:
        calls.append(path)
        return read_header(path)

    monkeypatch.setattr(parsing, "read_header", counted)
    return calls


def saved(ds: Dataset, tmp_path: Path, name: str = "object.dcm") -> Path:
    return dicom_samples.write(ds, tmp_path / name)


def with_private_values(ds: Dataset, count: int, size: int) -> Dataset:
    """``ds`` with ``count`` private values of ``size`` bytes before its UIDs' group."""
    block = ds.private_block(0x0009, "NEXREL TEST", create=True)
    for offset in range(count):
        block.add_new(0x10 + offset, "OB", bytes(size))
    return ds


# ---------------------------------------------------------------------- the same answers


@pytest.mark.parametrize(
    "path", sorted(PYDICOM_TEST_FILES.glob("*.dcm")), ids=lambda path: path.name
)
def test_the_same_answers_as_read_header_on_pydicoms_test_files(path: Path) -> None:
    # Every transfer syntax, implicit and big endian, deflated, no file meta, no SOP UIDs,
    # truncated pixel data, sequences of undefined length.
    assert outcome(read_store_header, path) == outcome(read_header, path)


@pytest.mark.parametrize(
    "path", sorted((ROOT / "fuzz" / "regressions").glob("*.dcm")), ids=lambda path: path.name
)
def test_the_same_answers_as_read_header_on_the_fuzzers_findings(path: Path) -> None:
    # One has its elements out of order, the highest tag not last: checked as read_header does.
    assert outcome(read_store_header, path) == outcome(read_header, path)


CORPUS = ROOT / "bench" / "corpus"


@pytest.mark.skipif(not (CORPUS / "cbct").is_dir(), reason="bench/corpus not built")
def test_the_same_answers_as_read_header_on_the_bench_corpus(read_header_calls) -> None:
    paths = (
        sorted(CORPUS.glob("cbct/**/*.dcm"))[::30] + sorted(CORPUS.glob("dental/**/*.dcm"))[::25]
    )
    assert len(paths) >= 10
    for path in paths:
        assert outcome(read_store_header, path) == outcome(read_header, path), path
    assert read_header_calls == []  # every header within the first 64 KiB


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"]
)
def test_explicit_implicit_and_big_endian_headers_are_read_from_memory(
    name: str, read_header_calls
) -> None:
    ds = read_store_header(PYDICOM_TEST_FILES / name)
    assert ds.SOPInstanceUID == read_header(PYDICOM_TEST_FILES / name).SOPInstanceUID
    assert read_header_calls == []


def test_a_large_image_is_read_from_its_first_bytes(tmp_path: Path, read_header_calls) -> None:
    ds = dicom_samples.intraoral(patient_name="Côté^Zoé", SpecificCharacterSet="ISO_IR 192")
    ds.Rows = ds.Columns = 512
    ds.PixelData = bytes(512 * 512 * 2)  # a 512 KB slice, as a CBCT's
    path = saved(ds, tmp_path)
    header = read_store_header(path)
    assert read_header_calls == []
    assert (header.SOPInstanceUID, header.SeriesInstanceUID) == (
        ds.SOPInstanceUID,
        ds.SeriesInstanceUID,
    )
    assert header.PatientName == "Côté^Zoé"
    assert header.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID


@pytest.mark.parametrize(("count", "size"), [(100, 1000), (1, 100_000)], ids=["small", "one"])
def test_a_header_longer_than_the_prefix_is_left_to_read_header(
    tmp_path: Path, read_header_calls, count: int, size: int
) -> None:
    ds = with_private_values(dicom_samples.intraoral(), count, size)  # past the first 64 KiB
    path = saved(ds, tmp_path)
    header = read_store_header(path)
    assert (header.SOPInstanceUID, header.SeriesInstanceUID) == (
        ds.SOPInstanceUID,
        ds.SeriesInstanceUID,
    )
    assert read_header_calls == [path]


def test_command_set_elements_are_left_to_read_header(tmp_path: Path, read_header_calls) -> None:
    data = dicom_samples.to_bytes(dicom_samples.intraoral())
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]  # (0002,0000)'s value
    command = struct.pack("<HHI", 0x0000, 0x0002, 6) + b"1.2.3\0"  # implicit VR, as in PS3.7
    path = tmp_path / "command.dcm"
    path.write_bytes(data[:meta_end] + command + data[meta_end:])
    assert outcome(read_store_header, path) == outcome(read_header, path)
    assert read_header_calls == [path]


# ---------------------------------------------------------------------- cut off


@pytest.mark.parametrize("length", [140, 200, 340, 370, 500, 1000, 2000, 3300, 3900, 6000])
def test_a_truncated_file_is_refused(tmp_path: Path, length: int) -> None:
    data = (PYDICOM_TEST_FILES / "CT_small.dcm").read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:length])
    with pytest.raises(UnreadableDicom, match="not a readable DICOM (file|dataset)"):
        read_store_header(path)


@pytest.mark.parametrize(
    ("marker", "into"),
    [
        ("Lévesque".encode("latin-1"), 3),  # the Patient's Name, whose value it reads
        (b"\x20\x00\x13\x00IS", 9),  # Instance Number, after every UID: its value skipped
        (b"\xe0\x7f\x10\x00", 5),  # the Pixel Data element's header
    ],
    ids=["patient name", "after the uids", "pixel data header"],
)
def test_an_object_cut_inside_an_element_is_refused(
    tmp_path: Path, marker: bytes, into: int
) -> None:
    ds = dicom_samples.intraoral(patient_name="Lévesque^Geneviève")
    data = saved(ds, tmp_path).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: data.index(marker) + into])
    with pytest.raises(UnreadableDicom, match="truncated"):
        read_store_header(path)


def test_a_header_longer_than_the_prefix_cut_off_is_refused(tmp_path: Path) -> None:
    ds = with_private_values(dicom_samples.intraoral(), 100, 1000)
    ds.InstanceNumber = 12345
    data = saved(ds, tmp_path).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: data.index(b"\x20\x00\x13\x00IS") + 10])
    with pytest.raises(UnreadableDicom, match="truncated"):
        read_store_header(path)


def test_a_highest_element_read_header_defers_is_left_to_it(
    tmp_path: Path, read_header_calls
) -> None:
    """read_header decodes a deferred value (over 64 KiB) of the highest tag rather than
    checking it: the same answer, from read_header itself."""
    ds = dicom_samples.intraoral()
    del ds.PixelData
    overlay = b"\x00\x60\x00\x30OW\x00\x00" + struct.pack("<I", 100_000) + bytes(4)
    path = tmp_path / "long.dcm"
    path.write_bytes(dicom_samples.to_bytes(ds) + overlay)
    assert outcome(read_store_header, path) == outcome(read_header, path)
    assert read_header_calls == [path]


def test_pixel_data_cut_short_is_the_previews_problem_as_for_read_header(tmp_path: Path) -> None:
    path = hostile.pixels_past_end(tmp_path / "short.dcm")  # 100 MB declared, 2 KB held
    assert outcome(read_store_header, path) == outcome(read_header, path)
    assert outcome(read_store_header, path)[0] != "UnreadableDicom"


def test_nothing_after_the_file_meta_is_refused(tmp_path: Path) -> None:
    data = dicom_samples.to_bytes(dicom_samples.intraoral())
    path = tmp_path / "meta.dcm"
    path.write_bytes(data[: 144 + struct.unpack_from("<I", data, 140)[0]])
    with pytest.raises(UnreadableDicom, match="nothing after the file meta"):
        read_store_header(path)


# ---------------------------------------------------------------------- bounded


def test_the_inflating_budget_is_the_setting(tmp_path: Path, settings) -> None:
    ds = dicom_samples.intraoral(
        size=128, patient_name="Côté^Zoé", SpecificCharacterSet="ISO_IR 192"
    )
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = saved(ds, tmp_path)
    header = read_store_header(path)  # 32 KB of pixels inflated: under the default
    assert (header.SOPInstanceUID, header.PatientName) == (ds.SOPInstanceUID, "Côté^Zoé")
    settings.NEXREL_MAX_INFLATED_BYTES = 16 * 1024
    with pytest.raises(UnreadableDicom, match="more than 16384 bytes"):
        read_store_header(path)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # File Meta Information Version, an OB: a 4-byte length, 4 GiB less 16 bytes.
        (b"\x02\x00\x01\x00OB\x00\x00\x02\x00\x00\x00", b"\x02\x00\x01\x00OB\x00\x00"),
        # The Patient's Name, whose value is read, as UN: a 4-byte length too.
        (b"\x10\x00\x10\x00PN", b"\x10\x00\x10\x00UN\x00\x00"),
    ],
    ids=["file meta", "patient name"],
)
def test_no_read_is_larger_than_the_file(tmp_path: Path, old: bytes, new: bytes) -> None:
    """A length mutated to ~4 GiB: Python's file.read(n) allocates n before reading."""
    data = dicom_samples.to_bytes(dicom_samples.intraoral(patient_name="Tremblay^Chloé"))
    at = data.index(old)
    path = tmp_path / "long.dcm"
    path.write_bytes(data[:at] + new + struct.pack("<I", 0xFFFFFFF0) + data[at + len(old) :])
    tracemalloc.start()
    try:
        with pytest.raises((UnreadableDicom, InvalidUids)):  # the UIDs after it are gone
            check_uids(read_store_header(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024**2, f"{peak >> 20} MB"
    assert outcome(read_store_header, path) == outcome(read_header, path)


# ---------------------------------------------------------------------- undecodable


def test_an_undecodable_series_uid_is_unreadable(tmp_path: Path) -> None:
    ds = dicom_samples.intraoral()
    data = dicom_samples.to_bytes(ds)
    head = b"\x20\x00\x0e\x00UI"
    assert data.count(head) == 1
    path = tmp_path / "odd.dcm"
    path.write_bytes(data.replace(head, head[:4] + b"\x55\xb7"))
    with pytest.raises(UnreadableDicom, match="Unknown Value Representation"):
        read_store_header(path)


def test_an_undecodable_patient_name_is_unreadable(tmp_path: Path) -> None:
    path = hostile.bad_vr(tmp_path / "odd.dcm")
    with pytest.raises(UnreadableDicom, match="Unknown Value Representation 'ZZ'"):
        read_store_header(path)


# ------------------------------------------------------------------ the walk by hand


def reading(parsed) -> tuple | None:
    """Everything read_store_header goes on from a prefix's parse, comparable: the data
    set's raw elements, its encoding, the File Meta's elements, and the walk's findings."""
    if parsed is None:
        return None
    ds, walk = parsed
    raw = [tuple(element) for element in ds._dict.values()]
    meta = [(e.tag, e.VR, e.value) for e in ds.file_meta]  # converts them, as both paths would
    encoding = (ds.original_encoding, ds.original_character_set, ds._parent_encoding)
    return raw, encoding, meta, walk.highest, walk.at_pixel_data


def by_hand_and_by_pydicom(data: bytes) -> tuple[tuple | None, tuple | None]:
    prefix = data[: parsing._STORE_PREFIX_BYTES]
    by_hand = reading(parsing._walk_by_hand(prefix))
    try:
        by_pydicom = reading(parsing._parse_store_prefix_with_pydicom(io.BytesIO(prefix)))
    except Exception as exc:
        by_pydicom = (type(exc).__name__,)
    return by_hand, by_pydicom


def test_the_walk_by_hand_reads_what_pydicom_reads_or_leaves_it_to_pydicom() -> None:
    # pydicom's test files (every transfer syntax, sequences of undefined length, no file
    # meta, big endian), the fuzzers' findings and our own samples.
    paths = [
        *sorted(PYDICOM_TEST_FILES.glob("*.dcm")),
        *sorted((ROOT / "fuzz" / "regressions").glob("*.dcm")),
    ]
    taken = 0
    for path in paths:
        by_hand, by_pydicom = by_hand_and_by_pydicom(path.read_bytes())
        if by_hand is not None:
            taken += 1
            assert by_hand == by_pydicom, path.name
    assert taken >= 20  # the plain case is the common one


@pytest.mark.skipif(not (CORPUS / "cbct").is_dir(), reason="bench/corpus not built")
def test_every_bench_corpus_header_is_walked_by_hand() -> None:
    paths = (
        sorted(CORPUS.glob("cbct/**/*.dcm"))[::30] + sorted(CORPUS.glob("dental/**/*.dcm"))[::25]
    )
    for path in paths:
        by_hand, by_pydicom = by_hand_and_by_pydicom(path.read_bytes())
        assert by_hand is not None, path
        assert by_hand == by_pydicom, path


def test_a_character_set_and_an_implicit_vr_header_are_walked_by_hand(tmp_path: Path) -> None:
    ds = dicom_samples.intraoral(patient_name="Bélanger^Zoé", SpecificCharacterSet="ISO_IR 100")
    explicit = saved(ds, tmp_path, "explicit.dcm")
    by_hand, by_pydicom = by_hand_and_by_pydicom(explicit.read_bytes())
    assert by_hand is not None and by_hand == by_pydicom
    header = read_store_header(explicit)
    assert header.PatientName == "Bélanger^Zoé"
    implicit = PYDICOM_TEST_FILES / "MR_small_implicit.dcm"
    by_hand, by_pydicom = by_hand_and_by_pydicom(implicit.read_bytes())
    assert by_hand is not None and by_hand == by_pydicom


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("MR_small_bigendian.dcm", "big endian"),
        ("no_meta.dcm", "no File Meta"),
        ("image_dfl.dcm", "deflated"),
    ],
)
def test_what_the_walk_by_hand_leaves_to_pydicom(name: str, why: str) -> None:
    assert parsing._walk_by_hand((PYDICOM_TEST_FILES / name).read_bytes()[:65536]) is None, why


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_sequences_of_undefined_length_are_walked_by_hand(tmp_path: Path, implicit) -> None:
    # As DCMTK and most devices write them: sequences and items with delimiters, nested.
    ds = dicom_samples.intraoral()
    code = Dataset()
    code.CodeValue = "T-11170"
    modifier = Dataset()
    modifier.CodeValue = "G-A101"
    code.AnatomicRegionModifierSequence = [modifier]
    ds.AnatomicRegionSequence = [code, Dataset()]
    for parent, keyword in (
        (ds, "AnatomicRegionSequence"),
        (code, "AnatomicRegionModifierSequence"),
    ):
        parent[keyword].is_undefined_length = True
        for item in parent[keyword].value:
            item.is_undefined_length_sequence_item = True
    if implicit:
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2"
    path = tmp_path / "undefined.dcm"
    ds.save_as(path, implicit_vr=implicit, little_endian=True, enforce_file_format=True)
    data = path.read_bytes()
    assert b"\xfe\xff\xdd\xe0" in data  # a sequence delimiter: undefined lengths written
    by_hand, by_pydicom = by_hand_and_by_pydicom(data)
    assert by_hand is not None and by_hand == by_pydicom
    assert outcome(read_store_header, path) == outcome(read_header, path)


def test_an_item_delimiter_ends_its_item_where_pydicom_ends_it(tmp_path: Path) -> None:
    # pydicom ignores an item delimiter's length, and reads a long length after a VR-like
    # pair of bytes first: the item ends after the header as read, in both walks.
    ds = dicom_samples.intraoral()
    code = Dataset()
    code.CodeValue = "T-11170"
    code.is_undefined_length_sequence_item = True
    ds.AnatomicRegionSequence = [code]
    ds["AnatomicRegionSequence"].is_undefined_length = True
    data = dicom_samples.to_bytes(ds)
    delimiter = data.index(b"\xfe\xff\x0d\xe0\x00\x00\x00\x00")
    for length in (b"\x04\x00\x00\x00", b"OB\x00\x00"):
        changed = data[: delimiter + 4] + length + data[delimiter + 8 :]
        by_hand, by_pydicom = by_hand_and_by_pydicom(changed)
        if length == b"OB\x00\x00":
            assert by_hand in (None, by_pydicom)  # 4 more bytes read: the rest is misaligned
        else:
            assert by_hand is not None and by_hand == by_pydicom


def test_a_sequence_whose_item_overruns_it_is_left_to_pydicom(tmp_path: Path) -> None:
    ds = dicom_samples.intraoral()
    code = Dataset()
    code.CodeValue = "T-11170"
    ds.AnatomicRegionSequence = [code]
    ds["AnatomicRegionSequence"].is_undefined_length = True
    data = bytearray(dicom_samples.to_bytes(ds))
    item = data.index(b"\xfe\xff\x00\xe0")  # the item, of defined length
    (length,) = struct.unpack_from("<L", data, item + 4)
    struct.pack_into("<L", data, item + 4, length - 2)  # its element now runs past its end
    assert parsing._walk_by_hand(bytes(data[:65536])) is None
    other = tmp_path / "overrun.dcm"
    other.write_bytes(data)
    assert outcome(read_store_header, other) == outcome(read_header, other)


mutation = mutation_strategy()
SEEDS = seeds()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(range(len(SEEDS))), mutations=st.lists(mutation, max_size=3))
def test_on_mutated_headers_the_walk_by_hand_agrees_with_pydicom(seed, mutations) -> None:
    by_hand, by_pydicom = by_hand_and_by_pydicom(mutate(SEEDS[seed], mutations))
    if by_hand is not None:
        assert by_hand == by_pydicom, (SEED_NAMES[seed], mutations)
