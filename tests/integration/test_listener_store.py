"""C-STORE into the running listener: pydicom's whole test set through DCMTK storescu, then
the durability statuses with crafted objects from a pynetdicom SCU."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.misc import is_dicom
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, _config
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import SecondaryCaptureImageStorage

from dicomnet.dimse import status
from dicomnet.models import DicomInstance
from tests.fixtures import PYDICOM_TEST_FILES, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("storescu"), reason="DCMTK not installed"),
]

UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2")
NO_STUDY_UID = "no StudyInstanceUID: the listener cannot index it"
NO_SOP_UIDS = "a dataset fragment with no SOP Class/Instance UID"

# Files of the test set that are not stored, and why. status None: storescu refuses to
# send the file, so the listener never sees it. Every other file must get Success and a row.
EXPECTED_FAILURES: dict[str, tuple[int | None, str]] = {
    "JPEGLSNearLossless_08.dcm": (status.DATASET_DOES_NOT_MATCH_SOP_CLASS, NO_STUDY_UID),
    "JPEGLSNearLossless_16.dcm": (status.DATASET_DOES_NOT_MATCH_SOP_CLASS, NO_STUDY_UID),
    "SC_rgb_jls_lossy_line.dcm": (status.DATASET_DOES_NOT_MATCH_SOP_CLASS, NO_STUDY_UID),
    "SC_rgb_jls_lossy_sample.dcm": (status.DATASET_DOES_NOT_MATCH_SOP_CLASS, NO_STUDY_UID),
    "MR_truncated.dcm": (None, "pixel data truncated: storescu cannot read the file"),
    "rtplan_truncated.dcm": (None, "truncated: storescu cannot read the file"),
    "SC_rgb_jpeg.dcm": (None, "DCMTK fails to parse it (unknown tag with bogus length)"),
    "no_meta.dcm": (None, "DCMTK misreads this meta-less file (bogus element length)"),
    "rtdose_rle.dcm": (None, "DCMTK stops at odd-length RLE pixel data, finds no SOP UIDs"),
    "rtdose_rle_1frame.dcm": (None, "DCMTK stops at odd-length RLE pixel data, no SOP UIDs"),
    "UN_sequence.dcm": (None, NO_SOP_UIDS),
    "empty_charset_LEI.dcm": (None, NO_SOP_UIDS),
    "meta_missing_tsyntax.dcm": (None, NO_SOP_UIDS),
    "nested_priv_SQ.dcm": (None, NO_SOP_UIDS),
    "no_meta_group_length.dcm": (None, NO_SOP_UIDS),
    "priv_SQ.dcm": (None, NO_SOP_UIDS),
    **{
        f"dicomdirtests/{name}": (None, "a DICOMDIR is a media directory, not a SOP instance")
        for name in (
            "DICOMDIR",
            "DICOMDIR-bigEnd",
            "DICOMDIR-empty.dcm",
            "DICOMDIR-implicit",
            "DICOMDIR-nooffset",
            "DICOMDIR-nopatient",
            "DICOMDIR-reordered",
            "TINY_ALPHA/DICOMDIR",
        )
    },
}


@dataclass(frozen=True)
class SetFile:
    name: str  # relative to the test-files directory
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str  # "" when the file has no meta information


def pydicom_test_set() -> list[SetFile]:
    """Every ``*.dcm`` file, and every extension-less file that is DICOM (has the preamble)."""
    files = []
    for path in sorted(PYDICOM_TEST_FILES.rglob("*")):
        if not path.is_file() or not (
            path.suffix == ".dcm" or (not path.suffix and is_dicom(path))
        ):
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        meta = getattr(ds, "file_meta", None)
        files.append(
            SetFile(
                name=path.relative_to(PYDICOM_TEST_FILES).as_posix(),
                path=path,
                sop_class_uid=str(ds.get("SOPClassUID", "")),
                sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
                transfer_syntax_uid=str(meta.get("TransferSyntaxUID", "")) if meta else "",
            )
        )
    return files


def storescu_profile(files: list[SetFile], path: Path) -> Path:
    """A storescu config proposing, per SOP class, each file's own transfer syntax as a
    context of its own, so nothing is converted on the way (meta-less files: uncompressed)."""
    syntaxes: dict[tuple[str, ...], str] = {}
    contexts: dict[tuple[str, tuple[str, ...]], None] = {}
    for f in files:
        if f.sop_class_uid:
            ts = (f.transfer_syntax_uid,) if f.transfer_syntax_uid else UNCOMPRESSED
            syntaxes.setdefault(ts, f"TS{len(syntaxes)}")
            contexts[(f.sop_class_uid, ts)] = None
    assert len(contexts) <= 128, "more contexts than one association can propose"
    lines = ["[[TransferSyntaxes]]"]
    for ts, name in syntaxes.items():
        lines.append(f"[{name}]")
        lines += [f"TransferSyntax{i} = {uid}" for i, uid in enumerate(ts, 1)]
    lines += ["[[PresentationContexts]]", "[TestSet]"]
    lines += [
        f"PresentationContext{i} = {sop_class}\\{syntaxes[ts]}"
        for i, (sop_class, ts) in enumerate(contexts, 1)
    ]
    lines += ["[[Profiles]]", "[TestSet]", "PresentationContexts = TestSet"]
    path.write_text("\n".join(lines) + "\n")
    return path


def storescu(port: int, profile: Path, files: list[SetFile]) -> dict[str, str]:
    """Send ``files`` in one association; map each file name to what storescu reports:
    the response text ("Success", "Error: DataSetDoesNotMatchSOPClass"...) or "not sent"."""
    result = subprocess.run(
        ["storescu", "-v", "-nh", "-xf", str(profile), "TestSet"]
        + ["-aet", "CARESTREAM", "-aec", "NEXREL-CRM", "127.0.0.1", str(port)]
        + [str(f.path) for f in files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    outcome: dict[str, str] = {}
    current = None
    by_path = {str(f.path): f.name for f in files}
    for line in result.stderr.splitlines():
        if m := re.match(r"I: Sending file: (.+)$", line):
            current = by_path[m.group(1)]
            outcome[current] = "not sent"
        elif (m := re.match(r"I: Received Store Response \((.+)\)$", line)) and current:
            outcome[current] = m.group(1)
    missing = {f.name for f in files} - outcome.keys()
    assert not missing, f"storescu did not try {missing}:\n{result.stderr[-3000:]}"
    return outcome


def test_every_pydicom_test_file_is_stored_or_refused_as_documented(listener, tmp_path):
    proc, port = listener
    files = pydicom_test_set()
    assert len(files) > 150  # the whole set, subfolders included
    assert EXPECTED_FAILURES.keys() <= {f.name for f in files}
    profile = storescu_profile(files, tmp_path / "storescu.cfg")

    outcome = storescu(port, profile, files)

    stored = [f for f in files if f.name not in EXPECTED_FAILURES]
    assert {f.name: outcome[f.name] for f in stored} == {f.name: "Success" for f in stored}
    for f in stored:
        rows = DicomInstance.objects.filter(sop_instance_uid=f.sop_instance_uid)
        assert rows.exists(), f"{f.name}: Success without a row"
        if f.transfer_syntax_uid:  # received in its own syntax, not converted
            assert rows.filter(transfer_syntax_uid=f.transfer_syntax_uid).exists(), f.name

    log = proc.output()
    for name, (expected, reason) in EXPECTED_FAILURES.items():
        f = next(f for f in files if f.name == name)
        if expected is None:
            assert outcome[name] == "not sent", f"{name}: {outcome[name]} ({reason})"
        else:
            assert outcome[name].startswith("Error"), f"{name}: {outcome[name]} ({reason})"
            assert (
                f"C-STORE {f.sop_instance_uid} from CARESTREAM refused with 0x{expected:04X}" in log
            )
            assert not DicomInstance.objects.filter(sop_instance_uid=f.sop_instance_uid).exists()
    assert "handler failure" not in log

    # Resending the whole set: the same answers, and not one new row.
    rows_before = DicomInstance.objects.count()
    assert storescu(port, profile, files) == outcome
    assert DicomInstance.objects.count() == rows_before
    spool_tmp = proc.env["NEXREL_SPOOL_DIR"] + "/tmp"
    assert not [p for p in Path(spool_tmp).rglob("*") if p.is_file()], "temp files left over"


# --- durability statuses from a pynetdicom SCU ------------------------------------------------


def secondary_capture(**overrides) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "1001"
    ds.PatientName = "COTE^ZOE"
    ds.Modality = "OT"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(64))
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def write_file(path: Path, dataset: Dataset | bytes, *, command_sop_uid: str) -> Path:
    """A DICOM file whose meta (what pynetdicom puts in the C-STORE command) names
    ``command_sop_uid``, followed by ``dataset`` encoded, or by raw bytes as given."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = command_sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    header = DicomBytesIO()
    write_file_meta_info(header, meta)  # by hand: pydicom's save_as would sync the meta
    body = dataset if isinstance(dataset, bytes) else encode(dataset, False, True)
    path.write_bytes(b"\0" * 128 + b"DICM" + header.getvalue() + body)
    return path


@pytest.fixture
def store_file(listener, monkeypatch):
    """Send a file's dataset bytes as they are, with the command UIDs taken from its meta."""
    _, port = listener
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    ae = AE(ae_title="CARESTREAM")
    ae.add_requested_context(SecondaryCaptureImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
    assert assoc.is_established

    def send(path: Path) -> int:
        rsp = assoc.send_c_store(path)
        assert "Status" in rsp, "no C-STORE response"
        return rsp.Status

    yield send
    assoc.release()


def test_durability_statuses_over_the_wire(store_file, listener, tmp_path):
    """One listener, one association, every refusal of the durability contract; then the
    same UID with other bytes. (One test: the listener start costs more than all of it.)"""
    proc, _ = listener
    spool = Path(proc.env["NEXREL_SPOOL_DIR"])

    # The dataset's SOP Instance UID differs from the command's.
    other = generate_uid()
    path = write_file(tmp_path / "mismatch.dcm", secondary_capture(), command_sop_uid=other)
    assert store_file(path) == status.DATASET_DOES_NOT_MATCH_SOP_CLASS

    # Invalid UIDs, in the SOP Instance UID (command too) and in the Study Instance UID.
    ds = secondary_capture(SOPInstanceUID="1.2.abc")
    path = write_file(tmp_path / "bad-sop.dcm", ds, command_sop_uid="1.2.abc")
    assert store_file(path) == status.DATASET_DOES_NOT_MATCH_SOP_CLASS
    ds = secondary_capture(StudyInstanceUID="1.2.abc")
    path = write_file(tmp_path / "bad-study.dcm", ds, command_sop_uid=ds.SOPInstanceUID)
    assert store_file(path) == status.DATASET_DOES_NOT_MATCH_SOP_CLASS

    # Garbage after a valid file meta: pydicom reads it as one odd, truncated element.
    garbage = random.Random(2).randbytes(4096)
    path = write_file(tmp_path / "garbage.dcm", garbage, command_sop_uid=generate_uid())
    result = store_file(path)
    assert 0xC000 <= result <= 0xCFFF, hex(result)

    assert not DicomInstance.objects.exists()
    assert not [p for p in spool.rglob("*") if p.is_file()], "a refused object left a file"
    log = wait_until(lambda: (out := proc.output()).count("refused with 0x") >= 4 and out, 5)
    assert f"differs from the command's {other}" in log
    assert "SOPInstanceUID '1.2.abc' is missing or not a valid UID" in log
    assert "StudyInstanceUID '1.2.abc' is missing or not a valid UID" in log
    assert f"refused with 0x{result:04X}: not a readable DICOM dataset" in log

    # Same UID, different bytes: Success, and a second version flagged as a conflict.
    first = secondary_capture()
    uid = first.SOPInstanceUID
    assert store_file(write_file(tmp_path / "v1.dcm", first, command_sop_uid=uid)) == 0
    second = secondary_capture(
        SOPInstanceUID=uid,
        StudyInstanceUID=first.StudyInstanceUID,
        SeriesInstanceUID=first.SeriesInstanceUID,
        PatientName="COTE^ZOE^CORRECTED",
    )
    assert store_file(write_file(tmp_path / "v2.dcm", second, command_sop_uid=uid)) == 0
    assert store_file(tmp_path / "v2.dcm") == 0  # identical resend: no third row

    rows = list(DicomInstance.objects.filter(sop_instance_uid=uid).order_by("version"))
    assert [(r.version, r.conflict) for r in rows] == [(1, False), (2, True)]
    assert rows[0].sha256 != rows[1].sha256
    assert all(Path(r.spool_path).is_file() for r in rows), "both versions kept in the spool"
