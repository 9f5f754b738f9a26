"""Two listener processes receive one study at the same time (issue 11, fault tests).

test_production_path.py sends two studies over two associations to two processes sharing a
port, but the kernel may hand both associations to one process, and nothing is sent twice.
Here two listener processes on their own ports each get two of four associations carrying
disjoint quarters of one 40-image study (two series), while a fifth and sixth send the same
8 images to both at once; two workers process on PostgreSQL. One study, its series and
instance counts exact, one row per image, linked to the patient and today's appointment.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from dicomnet.dimse import status
from tests.dicom_samples import intraoral
from tests.fixtures import ManagedProcess, free_port, wait_for_port, wait_until
from tests.integration import scu

pytestmark = [pytest.mark.integration]

IMAGES = 40
RESENT = 8  # sent to both listeners at once, on top of their own quarter

REPORT = """
import json
from dicomnet.models import DicomInstance, DicomSeries, DicomStudy
print(json.dumps({
    "instances": list(DicomInstance.objects.values_list("sop_instance_uid", "version", "state")),
    "studies": list(DicomStudy.objects.values(
        "study_instance_uid", "instance_count", "series_count", "status",
        "patient__chart_number", "appointment__start__date")),
    "series": sorted(DicomSeries.objects.values_list("series_instance_uid", "instance_count")),
}, default=str))
"""


def test_one_study_over_two_listeners_is_one_study(postgres_seeded_database, tmp_path):
    env = {"DATABASE_URL": postgres_seeded_database, "REDIS_URL": "", "Q_WORKERS": "2"}

    def manage(*args: str) -> ManagedProcess:
        return ManagedProcess(list(args), data_dir=tmp_path / "data", env=env)

    ports = [free_port(), free_port()]
    listeners = [
        manage("dicom_listener", "--port", str(p), "--address", "127.0.0.1").start() for p in ports
    ]
    worker = manage("qcluster").start()
    today = timezone.localdate().strftime("%Y%m%d")
    study, series = generate_uid(), [generate_uid(), generate_uid()]
    images = [
        intraoral(patient_id="1001", patient_name="COTE^ZOE", study_date=today,
                  study_uid=study, series_uid=series[n % 2], instance_number=n + 1, seed=n)
        for n in range(IMAGES)
    ]  # fmt: skip
    # (listener, calling AE, images): four quarters, then the same eight to both.
    plan = [(ports[i % 2], ("CARESTREAM", "PLANMECA")[i % 2], images[i::4]) for i in range(4)]
    plan += [(port, "CARESTREAM", images[:RESENT]) for port in ports]
    answers: list[list[int | None]] = [[] for _ in plan]

    def send(index: int) -> None:
        port, calling_ae, batch = plan[index]
        answers[index] = scu.store(port, batch, calling_ae=calling_ae).statuses

    try:
        for port in ports:
            wait_for_port(port, timeout=30)
        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(plan))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for (_, _, batch), got in zip(plan, answers, strict=True):
            assert got == [status.SUCCESS] * len(batch)

        def state() -> dict:
            done = manage("shell", "-c", REPORT).run()
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout.strip().splitlines()[-1])

        def all_processed() -> dict | None:
            now = state()
            return now if [s for _, _, s in now["instances"]] == ["PROCESSED"] * IMAGES else None

        try:
            report = wait_until(all_processed, timeout=120, interval=1)
        except AssertionError:
            logs = "\n".join(p.output()[-3000:] for p in [*listeners, worker])
            raise AssertionError(f"not processed: {state()}\n{logs}") from None
    finally:
        for proc in [worker, *listeners]:
            proc.stop(timeout=10)

    # Both processes received part of the study, and the resent images as duplicates.
    for listener in listeners:
        assert listener.output().count("answered 0x0000") >= IMAGES // 4
    duplicates = sum(p.output().count("identical bytes, no new row") for p in listeners)
    assert duplicates == RESENT * 2
    # One row per image, no version made by the concurrent duplicates.
    sops = sorted(uid for uid, _, _ in report["instances"])
    assert sops == sorted(str(ds.SOPInstanceUID) for ds in images)
    assert {version for _, version, _ in report["instances"]} == {1}
    # One study, two series of 20, linked to Zoé Côté and today's appointment.
    [row] = report["studies"]
    assert row["study_instance_uid"] == study
    assert (row["instance_count"], row["series_count"], row["status"]) == (IMAGES, 2, "PROCESSED")
    assert row["patient__chart_number"] == "1001"
    assert row["appointment__start__date"] == str(timezone.localdate())
    assert report["series"] == sorted([[uid, IMAGES // 2] for uid in series])
