"""Hostile objects on the ingest path (issue 10 §6), at the plain-function level: the
budgets that keep parsing and previews bounded, and the guards added for what the fuzzers
found (tests/fuzzing.py): a JPEG stream that made GDCM end the process, lengths larger
than the file, an element pydicom can't decode in an accepted header."""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
import tracemalloc

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
)

from dicomnet.dental.attributes import dental_attributes
from dicomnet.ingest import gdcm_jpeg12
from dicomnet.ingest.parsing import (
    UnreadableDicom,
    check_uids,
    header_fields,
    read_header,
    read_store_header,
)
from dicomnet.ingest.previews import NoPreview, render_preview
from tests.dicom_samples import ingest_bytes, intraoral, to_bytes, write
from tests.fixtures import PYDICOM_TEST_FILES, ROOT
from tests.integration import hostile

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ---------------------------------------------------------------------- budgets


def test_the_pixel_budget_refuses_a_bomb_before_decoding_it(tmp_path):
    path = hostile.rle_bomb(tmp_path / "bomb.dcm")  # 65535 x 65535 in 100 bytes
    tracemalloc.start()
    try:
        with pytest.raises(NoPreview, match=r"65535 x 65535 pixels .*NEXREL_MAX_DECODED_PIXELS"):
            render_preview(path, ds=read_header(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024**2


def test_the_pixel_budget_is_the_setting(tmp_path, settings):
    path = write(intraoral(size=64), tmp_path / "io.dcm")
    settings.NEXREL_MAX_DECODED_PIXELS = 64 * 64  # exactly the image: rendered
    assert render_preview(path, ds=read_header(path)).width == 64
    settings.NEXREL_MAX_DECODED_PIXELS = 64 * 64 - 1
    with pytest.raises(NoPreview, match="more than the 4095"):
        render_preview(path, ds=read_header(path))


@pytest.mark.parametrize("reader", [read_header, read_store_header])
def test_the_inflating_budget_refuses_a_deflate_bomb_unread(tmp_path, reader):
    """Both readers: the pipeline's and STOW-RS's, and the listener's."""
    path = hostile.deflate_bomb(tmp_path / "bomb.dcm")  # 2 MB, 2 GiB inflated
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableDicom, match="NEXREL_MAX_INFLATED_BYTES"):
            reader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024**2


def test_the_inflating_budget_is_the_setting(tmp_path, settings):
    ds = intraoral(size=128)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = write(ds, tmp_path / "deflated.dcm")
    assert read_header(path).Rows == 128  # 32 KB of pixels inflated: under the default
    settings.NEXREL_MAX_INFLATED_BYTES = 16 * 1024
    with pytest.raises(UnreadableDicom, match="more than 16384 bytes"):
        read_header(path)


def test_bytes_after_the_deflated_stream_end_the_inflating_check(tmp_path):
    """Found by atheris: zlib keeps the bytes after the stream's end as its unconsumed
    tail once an inflate was cut at its 1 MiB, and the check looped on them forever (a
    listener thread held for good)."""
    ds = intraoral(size=1024)
    ds.PixelData = bytes(len(ds.PixelData))  # 2 MiB inflated from a few KB: in pieces
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = write(ds, tmp_path / "deflated.dcm")
    path.write_bytes(path.read_bytes() + b"\x00" * 100)  # padding after the stream
    rows: list[int] = []
    reader = threading.Thread(target=lambda: rows.append(read_header(path).Rows), daemon=True)
    reader.start()
    reader.join(timeout=20)  # a regression loops: fail, don't hang the run
    assert rows == [1024], "read_header did not return"


def test_no_read_is_larger_than_the_file(tmp_path):
    """A length mutated to ~4 GiB: Python's file.read(n) allocates n before reading."""
    data = bytearray(to_bytes(intraoral()))
    # File Meta Information Version, an OB: a 4-byte length, here 4 GiB less 16 bytes.
    at = data.index(b"\x02\x00\x01\x00OB\x00\x00")
    data[at + 8 : at + 12] = struct.pack("<I", 0xFFFFFFF0)
    path = tmp_path / "long.dcm"
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        with pytest.raises(UnreadableDicom):
            read_header(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024**2, f"{peak >> 20} MB"


# ---------------------------------------------------------------------- an undecodable element


def with_vr(ds, keyword: str, vr: bytes) -> bytes:
    """The object's bytes, the VR of ``keyword``'s element replaced (explicit VR)."""
    data = to_bytes(ds)
    tag = ds.data_element(keyword).tag
    head = struct.pack("<HH", tag.group, tag.element) + ds.data_element(keyword).VR.encode()
    assert data.count(head) == 1
    return data.replace(head, head[:4] + vr)


def test_an_element_pydicom_cannot_decode_reads_as_absent(tmp_path, practice):
    """Found by the fuzzers (hypothesis in header_fields, atheris in dental_attributes): a
    header the listener takes (its UIDs are fine) whose Patient's Birth Date, or Content
    Time, has a VR no edition defines. Processing used to fail on it (NotImplementedError,
    retried, then ERROR); now that element reads as absent."""
    ds = intraoral(
        patient_id="1001", PatientBirthDate="19850412", ContentDate="20240102", ContentTime="1015"
    )
    data = with_vr(ds, "PatientBirthDate", b"EA")
    data = data.replace(b"\x08\x00\x33\x00TM", b"\x08\x00\x33\x00T\r")
    path = tmp_path / "odd.dcm"
    path.write_bytes(data)
    header = read_header(path)
    check_uids(header)
    assert header_fields(header).patient_birth_date is None
    assert dental_attributes(header)["acquired"] == "20240102"  # the time left out
    instance = ingest_bytes(practice, data)
    assert instance.state == instance.State.PROCESSED
    assert instance.preview_key


def test_an_undecodable_uid_is_unreadable_not_a_handler_failure(tmp_path):
    """Found by atheris: check_uids read a Series Instance UID of an undefined VR, whose
    NotImplementedError escaped store_instance (the listener answered 0xC211, with a
    traceback). read_header now decodes every UID it relies on: 0xC000, said why."""
    path = tmp_path / "odd.dcm"
    path.write_bytes(with_vr(intraoral(), "SeriesInstanceUID", b"\x55\xb7"))
    with pytest.raises(UnreadableDicom, match="Unknown Value Representation"):
        read_header(path)


# ---------------------------------------------------------------------- JPEG streams and GDCM


def jpeg_frame(name: str) -> bytes:
    ds = pydicom.dcmread(get_testdata_file(name))
    return next(generate_frames(ds.PixelData, number_of_frames=1))


JPEG_SYNTAXES = {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1}


def test_check_jpeg_passes_every_jpeg_stream_of_pydicoms_test_files():
    """What GDCM decodes today still reaches it: the check refuses no stream of pydicom's
    test files (nor JPEG-lossy.dcm's misplaced marker, which GDCM reads)."""
    names = []
    for path in PYDICOM_TEST_FILES.glob("*.dcm"):
        ds = pydicom.dcmread(path, force=True, defer_size=1024)
        syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
        if syntax in JPEG_SYNTAXES and "PixelData" in ds:
            names.append(path.name)
    assert len(names) >= 10
    for name in [*names, "JPEG-LL.dcm"]:
        gdcm_jpeg12.check_jpeg(jpeg_frame(name))


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (lambda f: f[:2] + b"\x00" + f[2:], "data where a marker should be"),
        (lambda f: f.replace(b"\xff\xc3", b"\x00\xff\xc3", 1), "data where a marker should be"),
        (lambda f: f[:40], "runs past the end"),
        (lambda f: b"\x00" + f, "does not start with SOI"),
    ],
    ids=["a byte after SOI", "a byte before SOF", "cut before SOS", "no SOI"],
)
def test_check_jpeg_refuses_what_libjpeg_warns_about(change, refusal):
    with pytest.raises(ValueError, match=refusal):
        gdcm_jpeg12.check_jpeg(change(jpeg_frame("JPEG-LL.dcm")))


def test_check_jpeg_refuses_four_components_jfif_2_and_unknown_adobe_transforms():
    soi, sof = b"\xff\xd8", b"\xff\xc0" + struct.pack(">HBHHB", 8 + 3 * 4, 8, 8, 8, 4)
    with pytest.raises(ValueError, match="neither 1 nor 3 components"):
        gdcm_jpeg12.check_jpeg(soi + sof + b"\x00" * 12 + b"\xff\xda")
    jfif2 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x02\x01" + b"\x00" * 7
    with pytest.raises(ValueError, match="JFIF version"):
        gdcm_jpeg12.check_jpeg(soi + jfif2 + b"\xff\xda")
    adobe = b"\xff\xee" + struct.pack(">H", 14) + b"Adobe" + b"\x00" * 6 + b"\x07"
    with pytest.raises(ValueError, match="Adobe colour transform"):
        gdcm_jpeg12.check_jpeg(soi + adobe + b"\xff\xda")


CORRUPT_JPEG_SCRIPT = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexrel.settings")
import django
django.setup()
from dicomnet.ingest.parsing import read_header
from dicomnet.ingest.previews import NoPreview, render_preview
try:
    render_preview(sys.argv[1], ds=read_header(sys.argv[1]))
    print("rendered")
except NoPreview as exc:
    print("NoPreview:", exc)
"""


@pytest.mark.parametrize(
    ("name", "outcomes"),
    [
        ("JPEG-LL.dcm", ("NoPreview: cannot decode pixel data",)),  # GDCM's alone
        ("SC_rgb_jpeg_dcmtk.dcm", ("NoPreview: cannot decode pixel data", "rendered")),
    ],
    ids=["lossless", "baseline"],
)
def test_a_jpeg_stream_gdcm_would_abort_on_ends_no_process(tmp_path, name, outcomes):
    """Found by atheris: one extraneous byte before a marker made GDCM throw a C++
    exception nothing catches, and the process (a worker; the web server, rendering it for
    WADO-RS) ended with SIGABRT. Now GDCM refuses it, and the next plugin (Pillow, for a
    baseline stream) may read it. In a child process, so that a regression fails this test
    rather than ending the test run."""
    ds = pydicom.dcmread(get_testdata_file(name))
    frame = jpeg_frame(name)
    marker = frame.index(b"\xff\xc3" if b"\xff\xc3" in frame else b"\xff\xc0")
    ds.PixelData = encapsulate([frame[:marker] + b"\x00" + frame[marker:]])
    path = tmp_path / "corrupt.dcm"
    ds.save_as(path)
    result = subprocess.run(
        [sys.executable, "-c", CORRUPT_JPEG_SCRIPT, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(outcomes), result.stdout
