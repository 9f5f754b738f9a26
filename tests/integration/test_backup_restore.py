"""docs/deploy.md's backup and restore, done: a PostgreSQL database with the demo's patients,
images and an audit trail is dumped (pg_dump -Fc), then its storage copied; the dump is
restored into another database, the source database dropped and its files deleted, and the
app, pointed at the restored database and the copied storage, finds everything: the same
rows, every stored object with the sha256 recorded at receipt, the audit trail's chain
intact (and extended after the restore) and still append-only, the schema up to date.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from tests import pg_cluster
from tests.fixtures import ManagedProcess
from tests.peers import PostgresServer

pytestmark = pytest.mark.integration

# Activity before the backup, through the app's own writers of the audit trail: a failed
# login, a login, a chart and an image viewed.
ACTIVITY = """
from django.test import Client
from dicomnet.models import DicomInstance
from patients.models import Patient
client = Client(REMOTE_ADDR="192.0.2.10")
login = "/accounts/login/"
client.post(login, {"username": "clinician", "password": "wrong"})
assert client.post(login, {"username": "clinician", "password": "nexrel-demo"}).status_code == 302
patient = Patient.objects.get(chart_number="1001")
assert client.get(f"/patients/{patient.pk}/").status_code == 200
image = DicomInstance.objects.filter(study__patient=patient).order_by("pk").first()
assert client.get(f"/dicom/instances/{image.pk}/thumbnail.webp").status_code == 200
"""

# What the app sees, through the ORM and the storage backend of its settings.
REPORT = """
import hashlib, json
from django.core.files.storage import default_storage
from dicomnet.models import DicomInstance, DicomSeries, DicomStudy
from patients.models import Appointment, AuditEvent, Patient

def digest(key):
    with default_storage.open(key, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()

print(json.dumps({
    "patients": Patient.objects.count(),
    "appointments": Appointment.objects.count(),
    "studies": sorted(
        DicomStudy.objects.values_list("study_instance_uid", "status", "instance_count")
    ),
    "series": DicomSeries.objects.count(),
    "instances": [
        {"pk": i.pk, "sop": i.sop_instance_uid, "state": i.state, "key": i.storage_key,
         "sha256": i.sha256, "stored_sha256": digest(i.storage_key),
         "previews": [default_storage.exists(k) for k in (i.preview_key, i.thumbnail_key)]}
        for i in DicomInstance.objects.order_by("pk")
    ],
    "audit": list(AuditEvent.objects.order_by("pk").values_list("pk", "hash")),
}))
"""

# After the restore, the trail goes on: a new event chained to the last restored one.
AFTER_RESTORE = """
from patients.audit import record
print(record("110100", action="E", what="backup_restored").pk)
"""


def _ok(done: subprocess.CompletedProcess, what: str) -> str:
    assert done.returncode == 0, f"{what}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _report(manage) -> dict:
    return json.loads(_ok(manage("shell", "-c", REPORT).run(), "report").strip().splitlines()[-1])


def test_backup_and_restore(postgres_server: PostgresServer, tmp_path: Path):
    # pg_dump and pg_restore of the server's own installation (initdb may be a link to it):
    # a pg_dump older than the server refuses to dump it.
    found = pg_cluster.bin_dir()
    assert found is not None  # postgres_server skipped otherwise
    bin_dir = (found / "initdb").resolve().parent
    suffix = uuid.uuid4().hex[:8]
    source_name, restored_name = f"nexrel_live_{suffix}", f"nexrel_restored_{suffix}"
    audit_key = secrets.token_urlsafe(32)
    live, restored = tmp_path / "live", tmp_path / "restored"

    def in_env(data_dir: Path, database: str, **extra: str):
        env = {
            "DATABASE_URL": postgres_server.url(database),
            "NEXREL_AUDIT_KEY": audit_key,
            "REDIS_URL": "",
            **extra,
        }
        return lambda *args: ManagedProcess(list(args), data_dir=data_dir, env=env)

    # 1. The live system: migrated, the demo's patients and radiographs (through the real
    # ingest path, into local storage), some activity on record.
    postgres_server.create_database(source_name)
    manage = in_env(live, source_name)
    _ok(manage("migrate", "--noinput").run(), "migrate")
    _ok(manage("seed_demo").run(timeout=300), "seed_demo")
    _ok(manage("shell", "-c", ACTIVITY).run(), "activity")
    before = _report(manage)
    assert before["patients"] and before["instances"] and len(before["audit"]) >= 4
    assert {i["state"] for i in before["instances"]} == {"PROCESSED"}

    # 2. The backup, in docs/deploy.md's order: the database first, then the storage.
    dump = tmp_path / "nexrel.dump"
    _ok(
        subprocess.run(
            [str(bin_dir / "pg_dump"), "-Fc", "--no-owner", "-f", str(dump),
             "--dbname", postgres_server.url(source_name)],
            capture_output=True, text=True, timeout=120,
        ),
        "pg_dump",
    )  # fmt: skip
    shutil.copytree(live / "storage", restored / "storage")

    # 3. The disaster: the database and the files are gone.
    with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{source_name}"')
    shutil.rmtree(live)

    # 4. The restore: an empty database, the dump restored into it, the copied storage.
    postgres_server.create_database(restored_name)
    _ok(
        subprocess.run(
            [str(bin_dir / "pg_restore"), "--no-owner", "--exit-on-error",
             "--dbname", postgres_server.url(restored_name), str(dump)],
            capture_output=True, text=True, timeout=120,
        ),
        "pg_restore",
    )  # fmt: skip
    manage = in_env(restored, restored_name)
    after = _report(manage)

    # The same rows, every object readable with the sha256 recorded when it was received.
    assert after == before
    for instance in after["instances"]:
        assert instance["stored_sha256"] == instance["sha256"], instance
        assert instance["previews"] == [True, True], instance

    # The audit trail's chain survived the dump, and goes on after the restore.
    verified = _ok(manage("verify_audit").run(), "verify_audit")
    assert f"audit trail intact: {len(before['audit'])} events" in verified
    new_event = int(_ok(manage("shell", "-c", AFTER_RESTORE).run(), "record").split()[-1])
    assert new_event > before["audit"][-1][0]  # the sequences were restored too
    verified = _ok(manage("verify_audit").run(), "verify_audit")
    assert f"audit trail intact: {len(before['audit']) + 1} events" in verified
    # Checked with the key: without the trail's own key, no row verifies.
    other_key = in_env(restored, restored_name, NEXREL_AUDIT_KEY="not-the-key")
    refused = other_key("verify_audit").run()
    assert refused.returncode == 1 and "the audit trail is broken" in refused.stderr
    # Still append-only: the trigger came back with the dump.
    with psycopg.connect(postgres_server.url(restored_name)) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE patients_auditevent SET what = 'rewritten'")

    # The restored system is whole: its schema is the code's, its checks pass.
    _ok(manage("migrate", "--check").run(), "migrate --check")
    _ok(manage("check").run(), "check")
