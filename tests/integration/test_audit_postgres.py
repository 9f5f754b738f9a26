"""The audit trail on PostgreSQL: the trigger refuses UPDATE and DELETE whoever asks, and
verify_audit still names a row changed by someone who drops the trigger first."""

from __future__ import annotations

import psycopg
import pytest

from tests.fixtures import ManagedProcess

RECORD = (
    "from patients import audit\n"
    "for n in range(3): audit.record('110100', action='E', what=f'pg_{n}')\n"
)


def test_postgres_refuses_changes_and_verify_finds_a_forced_one(postgres_database, tmp_path):
    env = {"DATABASE_URL": postgres_database, "REDIS_URL": ""}

    def manage(*args: str):
        return ManagedProcess(list(args), data_dir=tmp_path, env=env).run()

    for command in (("migrate", "--noinput"), ("shell", "-c", RECORD)):
        done = manage(*command)
        assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    with psycopg.connect(postgres_database, autocommit=True) as db:
        second = db.execute("SELECT id FROM patients_auditevent WHERE what = 'pg_1'").fetchone()[0]
        for sql in (
            "UPDATE patients_auditevent SET username = 'mallory' WHERE id = %s",
            "DELETE FROM patients_auditevent WHERE id = %s",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                db.execute(sql, [second])
        assert db.execute("SELECT count(*) FROM patients_auditevent").fetchone()[0] >= 3
        assert manage("verify_audit").returncode == 0
        # Someone with the rights to drop the protection, and use them.
        db.execute("ALTER TABLE patients_auditevent DISABLE TRIGGER USER")
        db.execute("UPDATE patients_auditevent SET username = 'mallory' WHERE id = %s", [second])
        db.execute("ALTER TABLE patients_auditevent ENABLE TRIGGER USER")
    done = manage("verify_audit")
    assert done.returncode == 1
    assert f"audit event {second} was changed" in done.stderr
