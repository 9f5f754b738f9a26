"""Browser upload through the ingest path: ``ingest_upload`` with files and zips."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from django.conf import settings

from dicomnet.ingest.uploads import ingest_upload
from dicomnet.models import DicomInstance
from tests import dicom_samples


def dicom_bytes(**kwargs) -> bytes:
    return dicom_samples.to_bytes(dicom_samples.intraoral(**kwargs))


def zipped(members: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name.endswith("/"):
                archive.mkdir(name.rstrip("/"))
            else:
                archive.writestr(name, data)
    buf.seek(0)
    return buf


def spool_temp_files() -> list[Path]:
    tmp = settings.SPOOL_DIR / "tmp"
    return [p for p in tmp.rglob("*") if p.is_file()] if tmp.exists() else []


def spooled_objects() -> list[Path]:
    return list((settings.SPOOL_DIR / "objects").rglob("*.dcm"))


def test_single_dcm_is_received(clinician):
    data = dicom_bytes()

    (result,) = ingest_upload("a.dcm", io.BytesIO(data), user=clinician)

    assert (result.name, result.ok, result.message) == ("a.dcm", True, "received")
    row = DicomInstance.objects.get(pk=result.instance_id)
    assert row.practice == clinician.practice
    assert row.peer_address == "upload by clinician"
    assert Path(row.spool_path).read_bytes() == data
    assert spool_temp_files() == []


def test_zip_of_several_ingests_each_member(clinician):
    first = dicom_bytes(seed=1)
    archive = zipped(
        {
            "exam/": b"",
            "exam/1.dcm": first,
            "exam/2.dcm": dicom_bytes(seed=2),
            "exam/copy-of-1.dcm": first,
            "__MACOSX/exam/._1.dcm": b"resource fork",
        }
    )

    results = ingest_upload("exam.zip", archive, user=clinician)

    assert [(r.name, r.ok, r.message) for r in results] == [
        ("exam.zip/exam/1.dcm", True, "received"),
        ("exam.zip/exam/2.dcm", True, "received"),
        ("exam.zip/exam/copy-of-1.dcm", True, "already received (identical)"),
    ]
    assert results[2].instance_id == results[0].instance_id
    assert DicomInstance.objects.count() == 2
    assert len(spooled_objects()) == 2
    assert spool_temp_files() == []


def test_non_dicom_file_is_refused_and_nothing_stored(clinician):
    (result,) = ingest_upload("notes.txt", io.BytesIO(b"molar 36: watch\n" * 50), user=clinician)

    assert (result.ok, result.message) == (False, "not a DICOM file")
    assert not DicomInstance.objects.exists()
    assert spool_temp_files() == [] and spooled_objects() == []


def test_zip_mixing_dicom_and_other_files_reports_each(clinician):
    archive = zipped({"a.dcm": dicom_bytes(), "readme.pdf": b"%PDF-1.7 ..."})

    results = ingest_upload("mixed.zip", archive, user=clinician)

    assert [(r.ok, r.message) for r in results] == [
        (True, "received"),
        (False, "not a DICOM file"),
    ]
    assert DicomInstance.objects.count() == 1


def test_empty_zip_is_reported(clinician):
    (result,) = ingest_upload("empty.zip", zipped({}), user=clinician)

    assert (result.ok, result.message) == (False, "the zip file is empty")
    assert not DicomInstance.objects.exists()


def test_zip_bomb_is_refused_before_extracting(clinician, settings):
    settings.NEXREL_UPLOAD_MAX_BYTES = 100_000
    bomb = zipped({f"part{n}.dcm": b"\0" * 60_000 for n in range(2)})  # ~120 kB from ~1 kB
    assert len(bomb.getvalue()) < 2_000

    (result,) = ingest_upload("bomb.zip", bomb, user=clinician)

    assert (result.ok, result.message) == (False, "zip expands beyond 100000 bytes; refused")
    assert not DicomInstance.objects.exists()
    assert spool_temp_files() == [] and spooled_objects() == []


def test_damaged_zip_member_is_reported_and_the_rest_still_ingested(clinician):
    good = dicom_bytes(seed=1)
    damaged = dicom_bytes(seed=2)
    archive = zipped({"damaged.dcm": damaged, "good.dcm": good})
    raw = bytearray(archive.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("damaged.dcm")
    data_start = info.header_offset + 30 + len(info.filename.encode())
    raw[data_start + info.compress_size // 2] ^= 0xFF  # flip bits inside the deflate stream

    results = ingest_upload("damaged.zip", io.BytesIO(bytes(raw)), user=clinician)

    assert [r.ok for r in results] == [False, True]
    assert "damaged" in results[0].message
    assert DicomInstance.objects.count() == 1
    assert spool_temp_files() == []
