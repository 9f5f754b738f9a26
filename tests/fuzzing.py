"""What the fuzzers check, shared by the hypothesis tests (``make test``:
dicomnet/tests/test_fuzz_ingest.py, dicomnet/dicomweb/tests/test_stow_fuzz.py) and the atheris
harnesses (``make fuzz``: fuzz/ingest.py, fuzz/stow.py).

- ``SEED_NAMES``, ``seeds()``: pydicom's test files (one or more of each transfer syntax and
  kind of object) and our own samples;
- ``mutate``: bytes flipped, lengths set to extremes, slices inserted, deleted, duplicated,
  the end cut off (``mutation_strategy``: the same, drawn by hypothesis);
- ``parse_and_preview``: the ingest steps in their order (the listener's, then the
  pipeline's), which succeed or raise their own documented errors, nothing else;
- ``stow_parts``: the STOW-RS multipart parser over a body, which never raises and leaves
  no temp file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from pydicom.dataset import Dataset

from dicomnet.dental.attributes import dental_attributes
from dicomnet.dicomweb import stow
from dicomnet.ingest.parsing import (
    InvalidUids,
    UnreadableDicom,
    check_uids,
    header_fields,
    json_metadata,
    read_header,
    read_store_header,
)
from dicomnet.ingest.previews import NoPreview, render_preview
from tests.dicom_samples import intraoral, to_bytes, undecodable
from tests.fixtures import PYDICOM_TEST_FILES

SEED_FILES = [
    "CT_small.dcm",  # explicit VR little endian, 16-bit signed
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "image_dfl.dcm",  # deflated
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_2frame.dcm",  # multi-frame
    "JPEG2000.dcm",
    "MR_small_jp2klossless.dcm",
    "SC_rgb_jpeg.dcm",  # JPEG baseline, YBR
    "JPGExtended.dcm",  # 12-bit JPEG (GDCM, dicomnet.ingest.gdcm_jpeg12)
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "rtdose_1frame.dcm",
    "reportsi.dcm",  # a structured report: no pixels
    "nested_priv_SQ.dcm",  # no SOP UIDs: refused
]
SEED_NAMES = [*SEED_FILES, "intraoral", "undecodable"]


def seeds() -> list[bytes]:
    """The bytes of each of ``SEED_NAMES``, in order."""
    return [(PYDICOM_TEST_FILES / name).read_bytes() for name in SEED_FILES] + [
        to_bytes(intraoral(PatientName="Côté^Zoé", SpecificCharacterSet="ISO_IR 192")),
        to_bytes(undecodable()),
    ]


# Values that make lengths and dimensions extreme, little endian (and big, for one syntax).
EXTREMES = [
    b"\x00\x00",
    b"\xff\xff",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\xfe\xff\xff\xff",
    b"\xff\xff\xff\x7f",
    b"\x00\x00\x00\x80",
    b"\x00\x00\x01\x00",
]
MUTATIONS = ("flip", "extreme", "insert", "delete", "cut", "duplicate")


def mutation_strategy():  # -> a hypothesis SearchStrategy (imported here: atheris needs none)
    """hypothesis' strategy for one of ``mutate``'s mutations."""
    from hypothesis import strategies as st

    return st.one_of(
        st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255)),
        st.tuples(st.just("extreme"), st.floats(0, 1), st.sampled_from(EXTREMES)),
        st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 64)),
        st.tuples(st.just("cut"), st.floats(0, 1), st.just(0)),
        st.tuples(st.just("duplicate"), st.floats(0, 1), st.integers(1, 512)),
    )


def mutate(data: bytes, mutations: Iterable[tuple]) -> bytes:
    """Apply each (kind, where as a fraction of the length, argument) in turn."""
    out = bytearray(data)
    for kind, where, arg in mutations:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= arg
        elif kind == "extreme":
            out[at : at + len(arg)] = arg
        elif kind == "insert":
            out[at:at] = arg
        elif kind == "delete":
            del out[at : at + arg]
        elif kind == "cut":
            del out[at:]
        elif kind == "duplicate":
            out[at:at] = out[at : at + arg]
    return bytes(out)


def parse_and_preview(path: Path) -> str:
    """The ingest steps in their order; what became of the object.

    The listener's ``read_store_header`` and the pipeline's ``read_header`` give the same
    answer: both raise ``UnreadableDicom``, or both pass ``check_uids`` or make it raise the
    same error (``InvalidUids`` or ``UnreadableDicom``), or both read the same UIDs and
    transfer syntax. What the pipeline reads of an accepted header (``header_fields``,
    ``json_metadata``, ``dental_attributes``) does not raise; ``render_preview`` raises
    ``NoPreview``. Any other exception escapes: a finding.
    """
    stored = _what_is_stored(read_store_header, path)
    assert stored == _what_is_stored(read_header, path), "the listener and the pipeline differ"
    if len(stored) == 1:
        return "refused"
    ds = read_header(path)
    header_fields(ds)
    json_metadata(ds)
    dental_attributes(ds)
    try:
        render_preview(path, ds=ds, max_size=256, thumb_size=64)
    except NoPreview:
        return "stored, no preview"
    return "stored, previewed"


def _what_is_stored(read: Callable[[Path], Dataset], path: Path) -> tuple[str, ...]:
    """The refusal's error, or what ``store_instance`` keeps of the header."""
    try:
        ds = read(path)
        check_uids(ds)
    except (UnreadableDicom, InvalidUids) as exc:
        return (type(exc).__name__,)
    uids = (ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID)
    return (*map(str, uids), str(ds.file_meta.get("TransferSyntaxUID", "")))


STOW_BOUNDARY = "nexrel-fuzz"


def stow_body(*contents: bytes) -> bytes:
    out = b""
    for content in contents:
        out += f"--{STOW_BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + f"--{STOW_BOUNDARY}--\r\n".encode()


def stow_parts(body: bytes, *, chunk: int, tmp_dir: Path) -> list[tuple[int, int, str]]:
    """(index, bytes in its file or -1, error) of each part ``iter_parts`` yields from
    ``body`` read ``chunk`` bytes at a time. It must not raise; a part comes with a whole
    file or an error, never both; every temp file is accounted for."""
    chunks = (body[i : i + chunk] for i in range(0, len(body), chunk))
    found = []
    for part in stow.iter_parts(chunks, STOW_BOUNDARY, tmp_dir=tmp_dir):
        assert (part.path is None) == bool(part.error), part
        size = -1
        if part.path is not None:
            size = part.path.stat().st_size
            part.path.unlink()
        found.append((part.index, size, part.error))
    leftover = sorted(tmp_dir.iterdir())
    assert leftover == [], f"temp files left: {leftover}"
    errors = [i for i, (_, _, error) in enumerate(found) if error]
    assert errors in ([], [len(found) - 1]), f"an error before the last part: {found}"
    return found
