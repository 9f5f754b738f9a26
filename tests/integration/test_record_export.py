"""Issue 9 §6: "The zip opens with DCMTK (``dcmdump`` on the DICOMDIR, and ``dcmmkdir``'s
own check), and its summary matches the database." Downloaded through the patient page's
link, as a clinician would."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import zipfile

import pytest
from django.urls import reverse

from dicomnet.export import SUMMARY_JSON, SUMMARY_PDF
from tests.record_samples import latest, record

pytestmark = pytest.mark.skipif(
    not (shutil.which("dcmdump") and shutil.which("dcmmkdir")), reason="DCMTK is not installed"
)


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def _records(dicomdir) -> list[str]:
    dump = _run("dcmdump", "+L", "+P", "0004,1430", str(dicomdir))
    return re.findall(r"CS \[(\w+)\]", dump.stdout)


def test_the_zip_opens_with_dcmtk_and_its_summary_matches_the_database(
    practice, clinician_client, tmp_path
):
    rec = record(practice)
    response = clinician_client.get(reverse("record_export", args=[rec.patient.pk]))
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    media = tmp_path / "media"
    archive.extractall(media)
    data = json.loads(archive.read(SUMMARY_JSON))
    file_ids = [f["file_id"] for s in data["studies"] for f in s["files"]]
    assert len(file_ids) == 3

    # 1. dcmdump reads the DICOMDIR: the patient's studies and the files it references.
    dump = _run("dcmdump", "+L", str(media / "DICOMDIR"))
    assert dump.returncode == 0, dump.stderr
    for study in (rec.bitewings, rec.ct):
        assert f"[{study.study_instance_uid}]" in dump.stdout
    assert rec.other.study_instance_uid not in dump.stdout
    for file_id in file_ids:
        assert f"[{file_id.replace('/', chr(92))}]" in dump.stdout  # (0004,1500) CS, "\"

    # 2. dcmmkdir's own check: it updates a copy of our DICOMDIR (+U) with the same files,
    #    checked for the General Purpose CD-R profile (STD-GEN-CD), type 1 attributes
    #    strictly (-I), aborting on the first inconsistent file (-a). It reads our records
    #    and finds each file in them already: not one record more.
    copy = tmp_path / "copy"
    shutil.copytree(media, copy)
    check = _run(
        "dcmmkdir", "-v", "-Pgp", "-I", "-a", "+U", "-nb", "+D", "DICOMDIR", *file_ids, cwd=copy
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "updating DICOMDIR" in check.stderr + check.stdout
    assert not re.search(r"^[EW]:", check.stderr, re.M), check.stderr
    assert (
        _records(copy / "DICOMDIR")
        == _records(media / "DICOMDIR")
        == ["PATIENT", "STUDY", "SERIES", "IMAGE", "IMAGE", "STUDY", "SERIES", "IMAGE"]
    )

    # 3. A DICOMDIR of dcmmkdir's own over the same files, strictly, is made without error.
    fresh = _run(
        "dcmmkdir", "-Pgp", "-I", "-a", "+D", str(tmp_path / "DICOMDIR"), *file_ids, cwd=media
    )
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr

    # 4. The summary against the database.
    studies = {s["study_instance_uid"]: s for s in data["studies"]}
    for study in (rec.bitewings, rec.ct):
        study.refresh_from_db()
        got = studies[study.study_instance_uid]
        assert (got["date"], got["modality"], got["description"], got["images"]) == (
            study.study_date.isoformat(),
            study.modality,
            study.study_description,
            len(latest(study)),
        )
    assert data["patient"]["chart_number"] == rec.patient.chart_number
    assert data["teeth"] == ["16", "26", "36", "46"]
    assert archive.read(SUMMARY_PDF).startswith(b"%PDF")
