"""End to end on embedded defaults: storescu -> listener -> worker -> linked preview."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from dicomnet.models import DicomInstance, DicomStudy
from tests.fixtures import PYDICOM_TEST_FILES, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("storescu"), reason="DCMTK not installed"),
]


def test_storescu_to_processed_study(listener, worker):
    _, port = listener
    result = subprocess.run(
        [
            "storescu",
            "-aet",
            "CARESTREAM",
            "-aec",
            "NEXREL-CRM",
            "127.0.0.1",
            str(port),
            str(PYDICOM_TEST_FILES / "CT_small.dcm"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    instance = wait_until(
        lambda: DicomInstance.objects.filter(state=DicomInstance.State.PROCESSED).first()
    )
    assert instance.calling_ae == "CARESTREAM"
    assert instance.thumbnail_key
    study = DicomStudy.objects.get(pk=instance.study_id)
    assert study.instance_count == 1
    assert study.status == DicomStudy.Status.NEEDS_REVIEW  # no such patient in the demo
