"""PostgreSQL stopped under a running listener, worker and web server (issue 11, fault tests).

While the database is down no C-STORE is answered Success (there is no row to commit): an
open association's objects get 0xA700, a new association is rejected as transient, and
``/health/`` says 503. Once it is back, the same listener process accepts again, on the
association that lived through the outage too, ``/health/`` is 200, and every object that
got Success is processed once; the refused ones, sent again, are stored once each.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter

import psycopg
import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid

from dicomnet.dimse import status
from dicomnet.net import hardening
from tests import pg_cluster
from tests.dicom_samples import intraoral
from tests.fixtures import ManagedProcess, free_port, wait_for_port, wait_until
from tests.integration import scu
from tests.peers import seed_database

pytestmark = [pytest.mark.integration]

OUTAGE_SECONDS = 20
# The stated bounds (docs/operations.md, "Faults, tested").
RECOVERY_SECONDS = 5  # from the database's return to a stored object and /health/ 200


def _health(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/health/", timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _rows(db_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute("select sop_instance_uid, state from dicomnet_dicominstance").fetchall()


@pytest.fixture(scope="module")
def outage_database(postgres_own_server: pg_cluster.Cluster, tmp_path_factory) -> str:
    """A seeded database on a cluster of this module's own: the test stops it, and in
    ``make test-postgres`` the suite's cluster must stay up for the other tests."""
    url = postgres_own_server.create_database("nexrel_outage")
    seed_database(url, tmp_path_factory.mktemp("outage-seed"))
    return url


def test_database_outage_acknowledges_nothing_it_cannot_keep(
    postgres_own_server: pg_cluster.Cluster, outage_database: str, tmp_path
):
    db = outage_database
    env = {
        "DATABASE_URL": db,
        "REDIS_URL": "",
        "Q_WORKERS": "1",
        # A task the outage cut off is delivered again soon (test_worker_killed.py's bounds).
        "Q_TIMEOUT": "4",
        "Q_RETRY": "6",
        "DEBUG": "false",
    }

    def manage(*args: str) -> ManagedProcess:
        return ManagedProcess(list(args), data_dir=tmp_path / "data", env=env)

    port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    listener = manage("dicom_listener", "--port", str(port), "--address", "127.0.0.1").start()
    web = manage("runserver", f"127.0.0.1:{web_port}", "--noreload").start()
    worker = manage("qcluster").start()
    study, series = generate_uid(), generate_uid()
    numbers = iter(range(1, 1000))

    def images(count: int) -> list:
        return [
            intraoral(patient_id="1001", study_uid=study, series_uid=series,
                      instance_number=(n := next(numbers)), seed=n)
            for _ in range(count)
        ]  # fmt: skip

    answers: dict[str, list[int | None]] = {}  # SOP Instance UID -> every answer it got
    datasets: dict[str, Dataset] = {}

    def send(batch: list[Dataset], sent: scu.Sent) -> list[int | None]:
        statuses = sent.statuses or [None] * len(batch)  # rejected: nothing answered
        for ds, answer in zip(batch, statuses, strict=True):
            answers.setdefault(str(ds.SOPInstanceUID), []).append(answer)
            datasets[str(ds.SOPInstanceUID)] = ds
        return statuses

    try:
        wait_for_port(port, timeout=30)
        wait_for_port(web_port, timeout=30)
        wait_until(lambda: _health(base)[0] == 200, timeout=30)

        # 1. Up: stored; and an association that will live through the outage.
        batch = images(5)
        assert send(batch, scu.store(port, batch)) == [status.SUCCESS] * 5
        held, _ = scu.associate(port, {str(batch[0].SOPClassUID)})
        assert held.is_established
        batch = images(1)
        assert send(batch, scu.store_on(held, batch, scu.Sent())) == [status.SUCCESS]

        # 2. Down for OUTAGE_SECONDS while a device keeps sending: nothing is Success.
        postgres_own_server.pause()
        during: list[int | None] = []
        rejections = []
        try:
            down_until = time.monotonic() + OUTAGE_SECONDS
            code, report = _health(base)
            assert code == 503 and not report["database"]["ok"], report
            batch = images(2)
            during += send(batch, scu.store_on(held, batch, scu.Sent()))
            while time.monotonic() < down_until:
                batch = images(2)
                sent = scu.store(port, batch)
                during += send(batch, sent)
                rejections.append(sent.rejected)
                time.sleep(1)
            assert _health(base)[0] == 503
        finally:
            postgres_own_server.resume()
        back_at = time.monotonic()
        # The held association's objects: Out of Resources; new associations: rejected as
        # transient (temporary congestion), at once rather than after the caller's timeout.
        assert during[:2] == [status.OUT_OF_RESOURCES] * 2
        assert len(rejections) >= OUTAGE_SECONDS // 3, rejections
        assert set(rejections) == {hardening.REJECT_TEMPORARY_CONGESTION}
        assert status.SUCCESS not in during
        assert "rejected (2, 3, 1): database unavailable" in listener.output()

        # 3. Back: the same listener process stores again, on a new association and on the
        #    one that lived through the outage; /health/ is 200 again.
        def stored_again() -> bool:
            one = images(1)
            return send(one, scu.store(port, one)) == [status.SUCCESS]

        wait_until(stored_again, timeout=RECOVERY_SECONDS, interval=0.5)
        batch = images(1)
        assert send(batch, scu.store_on(held, batch, scu.Sent())) == [status.SUCCESS]
        held.release()
        wait_until(lambda: _health(base)[0] == 200, timeout=RECOVERY_SECONDS, interval=0.5)
        assert time.monotonic() - back_at < RECOVERY_SECONDS
        assert listener.proc is not None and listener.proc.poll() is None
        assert listener.output().count("DICOM listener NEXREL-CRM on") == 1  # never restarted

        # 4. What was refused, sent again: Success, each once.
        refused = [uid for uid, got in answers.items() if status.SUCCESS not in got]
        assert len(refused) >= 2 + 2 * len(rejections)
        resend = [datasets[uid] for uid in refused]
        assert send(resend, scu.store(port, resend)) == [status.SUCCESS] * len(refused)

        # 5. Every object that got Success has its row, and is processed.
        try:
            wait_until(
                lambda: sorted(_rows(db)) == sorted((uid, "PROCESSED") for uid in answers),
                timeout=90,
                interval=0.5,
            )
        except AssertionError:
            logs = "\n".join(p.output()[-4000:] for p in (listener, worker))
            raise AssertionError(f"not all processed: {_rows(db)}\n{logs}") from None
    finally:
        for proc in (worker, web, listener):
            proc.stop(timeout=10)
    assert Counter(uid for uid, _ in _rows(db)) == Counter(set(answers))  # one row each
