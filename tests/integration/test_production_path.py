"""The scale-out production configuration, end to end, as separate processes.

PostgreSQL, a django-q2 broker (Redis, or the ORM broker on PostgreSQL), S3 with server-side
encryption (moto), two listener processes sharing one port (SO_REUSEPORT) and two qcluster
workers; DCMTK storescu sends a batch over two parallel associations.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from tests.dicom_samples import write_dicom
from tests.fixtures import ManagedProcess, free_port, wait_for_port, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not shutil.which("storescu"), reason="DCMTK storescu not installed"),
]

LINKED_FILES = 12  # PatientID 1001 (Zoé Côté, imaging appointment today), two series
UNKNOWN_FILES = 8  # a patient the practice doesn't have: NEEDS_REVIEW
TOTAL = LINKED_FILES + UNKNOWN_FILES

# Run by `manage.py shell -c` with the production env: the state, read through the ORM.
REPORT = """
import json
from django_q.models import Task
from dicomnet.models import DicomInstance, DicomStudy
from patients.models import Notification
print(json.dumps({
    "instances": list(DicomInstance.objects.values(
        "pk", "sop_instance_uid", "state", "version", "attempts", "error", "sha256", "size",
        "storage_key", "preview_key", "thumbnail_key", "spool_path", "processed_at", "calling_ae",
        "study__study_instance_uid")),
    "studies": list(DicomStudy.objects.values(
        "pk", "study_instance_uid", "instance_count", "series_count", "status",
        "patient__chart_number", "appointment__start__date")),
    "notifications": list(Notification.objects.values("study_id", "count")),
    "tasks": [[t.name, t.result, t.success] for t in Task.objects.filter(
        func="dicomnet.ingest.pipeline.process_instance")],
}, default=str))
"""


def _make_batch(directory: Path) -> tuple[list[Path], str, str]:
    directory.mkdir(parents=True)
    today = timezone.localdate()
    linked_study, unknown_study = generate_uid(), generate_uid()
    linked_series = [generate_uid(), generate_uid()]
    unknown_series = generate_uid()
    files = []
    for n in range(LINKED_FILES):
        files.append(
            write_dicom(
                directory / f"linked-{n:02d}.dcm",
                study_uid=linked_study,
                series_uid=linked_series[n % 2],
                patient_id="1001",
                patient_name="COTE^ZOE",
                study_date=today,
                instance_number=n + 1,
            )
        )
    for n in range(UNKNOWN_FILES):
        files.append(
            write_dicom(
                directory / f"unknown-{n:02d}.dcm",
                study_uid=unknown_study,
                series_uid=unknown_series,
                patient_id="X-9999",
                patient_name="INCONNU^PERSONNE",
                study_date=today,
                instance_number=n + 1,
            )
        )
    return files, linked_study, unknown_study


def _count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.mark.parametrize("broker", ["redis", "orm"])
def test_scale_out_ingest(broker, request, postgres_database, s3_server, s3_bucket, tmp_path):
    data_dir = tmp_path / "data"
    env = {
        "DATABASE_URL": postgres_database,
        "REDIS_URL": request.getfixturevalue("redis_server") if broker == "redis" else "",
        "NEXREL_S3_BUCKET": s3_bucket,
        "NEXREL_S3_REGION": s3_server.region,
        "NEXREL_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "NEXREL_S3_SSE": "AES256",
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "Q_WORKERS": "2",
    }

    def manage(*args: str) -> ManagedProcess:
        return ManagedProcess(list(args), data_dir=data_dir, env=env)

    # 1. A fresh database, migrated and seeded the way a deployment does it (without the demo's
    # radiographs: every instance counted below is one of the batch).
    for command in (("migrate", "--noinput"), ("seed_demo", "--no-images")):
        done = manage(*command).run()
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"

    # 2. Two listener processes on one port, two worker clusters.
    port = free_port()
    listener = manage(
        "dicom_listener", "--processes", "2", "--port", str(port), "--address", "127.0.0.1"
    ).start()
    workers = [manage("qcluster").start(), manage("qcluster").start()]
    try:
        wait_for_port(port, timeout=30)

        # 3. The batch, over two parallel associations from two devices.
        files, linked_study, unknown_study = _make_batch(tmp_path / "batch")
        senders = [
            subprocess.Popen(
                ["storescu", "-aet", ae, "-aec", "NEXREL-CRM", "127.0.0.1", str(port)]
                + [str(f) for f in files[i::2]],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i, ae in enumerate(("CARESTREAM", "PLANMECA"))
        ]
        for sender in senders:
            out, _ = sender.communicate(timeout=60)
            assert sender.returncode == 0, out

        # 4. Wait for the workers: every instance processed and every task result saved.
        db = postgres_database
        try:
            wait_until(
                lambda: (
                    _count(
                        db, "select count(*) from dicomnet_dicominstance where state = 'PROCESSED'"
                    )
                    == TOTAL
                    and _count(
                        db,
                        "select count(*) from django_q_task"
                        " where func = 'dicomnet.ingest.pipeline.process_instance'",
                    )
                    >= TOTAL
                ),
                timeout=60,
                interval=0.3,
            )
        except AssertionError:
            logs = "\n".join(p.output()[-3000:] for p in [listener, *workers])
            raise AssertionError(f"batch not processed in time; logs:\n{logs}") from None
    finally:
        # SIGTERM, bounded wait, then SIGKILL (qcluster can hang: django-q2 #346).
        for proc in [*workers, listener]:
            proc.stop(timeout=10)

    assert "started 2 listener processes" in listener.output()
    if broker == "redis":  # the tasks really went through Redis
        import redis

        stats = redis.Redis.from_url(env["REDIS_URL"]).info("commandstats")
        assert stats["cmdstat_rpush"]["calls"] >= TOTAL, stats

    report = manage("shell", "-c", REPORT).run()
    assert report.returncode == 0, report.stderr
    state = json.loads(report.stdout.strip().splitlines()[-1])

    # Every instance processed exactly once: one row per sent object, one task run each.
    instances = state["instances"]
    assert len(instances) == TOTAL
    assert {i["sop_instance_uid"] for i in instances} == _sop_uids(files)
    for i in instances:
        assert (i["state"], i["version"], i["attempts"], i["error"]) == ("PROCESSED", 1, 0, "")
        assert i["processed_at"] and not i["spool_path"]
    assert {i["calling_ae"] for i in instances} == {"CARESTREAM", "PLANMECA"}
    results = sorted((name, result, success) for name, result, success in state["tasks"])
    assert results == sorted((f"process-instance-{i['pk']}", "processed", True) for i in instances)

    # The study rows: counts derived under concurrency, the known patient linked.
    studies = {s["study_instance_uid"]: s for s in state["studies"]}
    assert set(studies) == {linked_study, unknown_study}
    linked, unknown = studies[linked_study], studies[unknown_study]
    assert (linked["instance_count"], linked["series_count"]) == (LINKED_FILES, 2)
    assert (linked["status"], linked["patient__chart_number"]) == ("PROCESSED", "1001")
    assert linked["appointment__start__date"] == str(timezone.localdate())
    assert (unknown["instance_count"], unknown["series_count"]) == (UNKNOWN_FILES, 1)
    assert (unknown["status"], unknown["patient__chart_number"]) == ("NEEDS_REVIEW", None)
    counts = {n["study_id"]: n["count"] for n in state["notifications"]}
    assert counts == {linked["pk"]: LINKED_FILES, unknown["pk"]: UNKNOWN_FILES}

    # The bytes: in S3 under our keys only (nothing renamed), encrypted, intact.
    client = s3_server.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
    bucket_keys = {obj["Key"] for page in pages for obj in page.get("Contents", [])}
    expected = {
        key for i in instances for key in (i["storage_key"], i["preview_key"], i["thumbnail_key"])
    }
    assert "" not in expected  # every instance got a preview and a thumbnail
    assert bucket_keys == expected
    for i in instances:
        obj = client.get_object(Bucket=s3_bucket, Key=i["storage_key"])
        assert obj["ServerSideEncryption"] == "AES256"
        assert hashlib.sha256(obj["Body"].read()).hexdigest() == i["sha256"]
        thumb = client.head_object(Bucket=s3_bucket, Key=i["thumbnail_key"])
        assert thumb["ServerSideEncryption"] == "AES256"
    assert not list((data_dir / "spool" / "objects").glob("*/*.dcm"))


def _sop_uids(files: list[Path]) -> set[str]:
    import pydicom

    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}


# Two workers finish instances of the same series at the same moment: each marks its own
# instance PROCESSED, then both derive the counts before either has committed.
CONCURRENT_COUNTS = """
import threading
from django.db import connection, transaction
from dicomnet.models import DicomInstance, DicomSeries, DicomStudy
from dicomnet.ingest.pipeline import refresh_counts
from patients.models import Practice

practice = Practice.objects.order_by("pk").first()
study = DicomStudy.objects.create(practice=practice, study_instance_uid="1.2.3")
series = DicomSeries.objects.create(practice=practice, study=study, series_instance_uid="1.2.3.1")
pks = [
    DicomInstance.objects.create(
        practice=practice, study=study, series=series, sop_instance_uid=f"1.2.3.1.{n}",
        sha256=str(n),
    ).pk
    for n in (1, 2)
]
both_marked = threading.Barrier(2, timeout=10)
errors = []

def finish(pk):
    try:
        with transaction.atomic():
            DicomInstance.objects.filter(pk=pk).update(state="PROCESSED")
            both_marked.wait()
            refresh_counts(study)
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connection.close()

threads = [threading.Thread(target=finish, args=(pk,)) for pk in pks]
for t in threads:
    t.start()
for t in threads:
    t.join(30)
study.refresh_from_db()
series.refresh_from_db()
print("counts", study.instance_count, series.instance_count, errors)
"""


def test_concurrent_workers_count_every_instance(postgres_database, tmp_path):
    """On PostgreSQL (READ COMMITTED) counts must not be lost when two workers commit at once."""
    env = {"DATABASE_URL": postgres_database, "REDIS_URL": ""}
    for command in (("migrate", "--noinput"), ("seed_demo",), ("shell", "-c", CONCURRENT_COUNTS)):
        done = ManagedProcess(list(command), data_dir=tmp_path, env=env).run()
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip().splitlines()[-1] == "counts 2 2 []"
