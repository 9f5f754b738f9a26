"""A worker SIGKILLed mid-queue (issue 11, fault tests): its claimed and prefetched tasks
are taken over by the next worker within the stated bound (the broker's ``Q_RETRY``: an
unacknowledged task is delivered again after it), and every image is processed once."""

from __future__ import annotations

import time

import pytest
from pydicom.uid import generate_uid

from dicomnet.models import DicomInstance, DicomStudy
from tests.dicom_samples import intraoral, store_bytes, to_bytes
from tests.fixtures import ManagedProcess, wait_until

pytestmark = pytest.mark.integration

COUNT = 30
# Short for the test; production's defaults are documented in docs/operations.md.
ENV = {"Q_WORKERS": "1", "Q_TIMEOUT": "4", "Q_RETRY": "6", "NEXREL_ALERTS_ENABLED": "false"}


def _processed() -> int:
    return DicomInstance.objects.filter(state=DicomInstance.State.PROCESSED).count()


def test_a_killed_workers_tasks_are_taken_over_within_q_retry(
    transactional_db, practice, isolated_data
):
    study_uid, series_uid = generate_uid(), generate_uid()
    for n in range(COUNT):
        ds = intraoral(
            patient_id="1001", study_uid=study_uid, series_uid=series_uid, instance_number=n + 1,
            size=512, seed=n,
        )  # fmt: skip
        store_bytes(practice, to_bytes(ds), position=n + 1)
    first = ManagedProcess(["qcluster"], data_dir=isolated_data, env=ENV).start()
    try:
        wait_until(lambda: _processed() >= 3, timeout=60)
    finally:
        first.kill()  # SIGKILL the cluster and its worker: no ack, no clean-up
    killed_at = time.monotonic()
    done_before = _processed()
    assert done_before < COUNT, "the queue emptied before the kill: nothing to take over"
    second = ManagedProcess(["qcluster"], data_dir=isolated_data, env=ENV).start()
    try:
        wait_until(lambda: _processed() == COUNT, timeout=120)
        taken_over_in = time.monotonic() - killed_at
    finally:
        second.stop(timeout=5)
    # Within Q_RETRY (6 s) plus the time to process what was left, with room for a busy CI.
    assert taken_over_in < 6 + 60, taken_over_in
    # Each image once: no duplicate row, the study's count exact, no instance left claimed.
    assert DicomInstance.objects.count() == COUNT
    study = DicomStudy.objects.get(study_instance_uid=study_uid)
    assert study.instance_count == COUNT
    assert not DicomInstance.objects.exclude(claimed_at=None).exists()
