"""Hostile input at the network edge (issue 10 §6), measured: each case of
tests/integration/test_hostile_input.py (the same peers, tests/integration/hostile.py) run
against a real listener, with what the peer got, what the listener logged, its peak RSS
(VmHWM, reset before each case) and thread count while the case runs, and whether a
legitimate association made meanwhile succeeded. Then the STOW-RS cases, in this process
(Django's test client): the status, and the Python heap's peak (tracemalloc).

Prints markdown (the tables of docs/security.md, "Hostile input") with the machine and command.

Usage: .venv/bin/python bench/bench_hostile.py [--work /tmp/nexrel-bench-hostile]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from run_bench import free_port, wait_port  # noqa: E402


@dataclass
class Row:
    case: str
    got: str
    logged: str = ""
    rss_mb: float = 0.0
    threads: int = 0
    concurrent: str = ""


class Listener:
    """``manage.py dicom_listener`` on a free port with ``env`` over the bench's."""

    def __init__(self, base_env: dict[str, str], work: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log_path = work / f"listener-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "dicom_listener", "--port", str(self.port),
             "--address", "127.0.0.1"],
            cwd=ROOT, env={**base_env, **env}, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_port(self.port)
        time.sleep(0.5)  # past its start-up (reconcile)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def line(self, phrase: str, offset: int, timeout: float = 5) -> str:
        """The first log line from byte ``offset`` holding ``phrase``, its message only."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            for line in text.splitlines():
                if phrase in line:
                    message = line.split("] ", 1)[-1]
                    # The SOP Instance UID the line starts with says nothing here.
                    message = re.sub(r"^C-STORE \S+ from ", "C-STORE from ", message)
                    return message if len(message) <= 170 else message[:167] + "..."
            time.sleep(0.1)
        return f"(not logged: {phrase!r})"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def measured(listener: Listener, case: str, run: Callable[[], tuple[str, str, str]]) -> Row:
    """Run ``run`` (-> what the peer got, the log phrase, the concurrent association) while
    sampling the listener."""
    from tests.integration import hostile

    offset = listener.log_size()
    with hostile.Usage(listener.pid) as usage:
        got, phrase, concurrent = run()
    logged = listener.line(phrase, offset) if phrase else ""
    row = Row(case, got, logged, usage.peak_rss_mb, usage.peak_threads, concurrent)
    print(f"  {case}: {got}", file=sys.stderr, flush=True)
    return row


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


# ---------------------------------------------------------------------- the cases


def pdu_cases(listener: Listener) -> list[Row]:
    from tests.integration import hostile

    rows = []

    def run_listener_baseline() -> tuple[str, str, str]:
        return "C-ECHO Success" if hostile.echo(listener.port) else "failed", "", "-"

    rows.append(measured(listener, "(baseline: one C-ECHO)", run_listener_baseline))
    for name, case in hostile.MALFORMED.items():

        def run(case=case) -> tuple[str, str, str]:
            sock, since = hostile.send_hostile(listener.port, case.data, inside=case.inside)
            echoed = hostile.echo(listener.port)
            answer = hostile.answer(sock, since=since, timeout=5)
            sock.close()
            return str(answer), case.logged, yes(echoed)

        where = "inside an association" if case.inside else "first PDU"
        rows.append(measured(listener, f"{name} ({where})", run))
    for name, data, phrase in (
        ("HTTP request", hostile.HTTP_REQUEST, "sent an HTTP request"),
        ("TLS ClientHello", hostile.client_hello(), "sent a TLS ClientHello"),
    ):

        def run_other(data=data, phrase=phrase) -> tuple[str, str, str]:
            sock, since = hostile.send_hostile(listener.port, data, inside=False)
            echoed = hostile.echo(listener.port)
            answer = hostile.answer(sock, since=since, timeout=5)
            sock.close()
            return str(answer), phrase, yes(echoed)

        rows.append(measured(listener, f"{name} on the DICOM port", run_other))
    return rows


def slow_cases(listener: Listener) -> list[Row]:
    from tests.integration import hostile, rawpeer

    rows = []
    for name, inside, interval in (
        ("slowloris: A-ASSOCIATE-RQ, 1 byte/s", False, 1.0),
        ("slowloris: P-DATA-TF, 1 byte/s, associated", True, 1.0),
        ("silent connection", False, None),
    ):

        def run(inside=inside, interval=interval) -> tuple[str, str, str]:
            data = (
                rawpeer.pdu_header(rawpeer.P_DATA_TF, 1000) + b"\x00" * 1000
                if inside
                else rawpeer.associate_rq()
            )
            sock = rawpeer.associate(listener.port) if inside else hostile.connect(listener.port)
            since = time.monotonic()
            trickle = hostile.Trickle(sock, data, interval)
            trickle.start()
            time.sleep(1.5)
            echoed = hostile.echo(listener.port)
            answer = hostile.answer(sock, since=since, timeout=15)
            trickle.stop.set()
            trickle.join()
            sock.close()
            phrase = "too slow" if interval else ""
            return f"{answer} ({trickle.sent} bytes sent)", phrase, yes(echoed)

        rows.append(measured(listener, name, run))
    return rows


def one_host_flood(listener: Listener) -> list[Row]:
    from tests.integration import hostile

    def run() -> tuple[str, str, str]:
        sockets = hostile.connect_many(listener.port, 50, source="127.0.0.2")
        since = time.monotonic()
        answers = [hostile.answer(s, since=since, timeout=1) for s in sockets if s]
        echoed = hostile.echo(listener.port, source="127.0.0.1")
        for s in sockets:
            if s:
                s.close()
        closed = sum(1 for a in answers if a.closed)
        got = f"{len(answers) - closed} kept (to the ACSE timeout), {closed} closed at accept"
        return got, "closed at accept", yes(echoed) + " (from 127.0.0.1)"

    return [measured(listener, "50 idle connections from one host", run)]


def many_hosts_flood(listener: Listener) -> list[Row]:
    from tests.integration import hostile

    sources = [f"127.0.0.{10 + i}" for i in range(30)]

    def run_idle() -> tuple[str, str, str]:
        sockets = [hostile.connect(listener.port, source=s) for s in sources]
        since = time.monotonic()
        answers = [hostile.answer(s, since=since, timeout=1) for s in sockets]
        echoed = hostile.echo(listener.port)
        for s in sockets:
            s.close()
        closed = sum(1 for a in answers if a.closed)
        got = f"{len(answers) - closed} kept, {closed} closed at accept"
        return got, "(DICOM_MAX_CONNECTIONS)", yes(echoed) + " (limit reached: by design)"

    def run_requests() -> tuple[str, str, str]:
        results = hostile.associate_many(listener.port, sources)
        outcomes = [what for _, what in results]
        for sock, _ in results:
            if sock:
                sock.close()
        counts = {what: outcomes.count(what) for what in sorted(set(outcomes))}
        time.sleep(1)
        echoed = hostile.echo(listener.port)
        got = ", ".join(f"{n} {what}" for what, n in counts.items())
        return got, "associations already active", yes(echoed) + " (once they close)"

    return [
        measured(listener, "30 idle connections from 30 hosts", run_idle),
        measured(listener, "30 A-ASSOCIATE-RQ at once from 30 hosts", run_requests),
    ]


def store_cases(listener: Listener, work: Path) -> list[Row]:
    from dicomnet.dimse import status
    from tests.integration import hostile

    crafted = {
        "C-STORE: bad VR (ZZ)": (hostile.bad_vr, "refused with 0xC000"),
        "C-STORE: header element past the end": (hostile.header_past_end, "refused with 0xC000"),
        "C-STORE: pixel data past the end": (hostile.pixels_past_end, ""),
        "C-STORE: 100 nested sequences": (lambda p: hostile.nested(p, 100), ""),
        "C-STORE: 1000 nested sequences": (
            lambda p: hostile.nested(p, 1000),
            "refused with 0xC000",
        ),
        "C-STORE: RLE bomb (65535 x 65535, 8 GiB decoded)": (hostile.rle_bomb, ""),
        "C-STORE: deflate bomb (2 MB, 2 GiB inflated)": (
            hostile.deflate_bomb,
            "refused with 0xC000",
        ),
        "C-STORE: SOP Instance UID ../../etc/passwd": (
            lambda p: hostile.with_uids(p, sop_uid="../../etc/passwd"),
            "refused with 0xA900",
        ),
        "C-STORE: SOP Instance UID of 72 characters": (
            lambda p: hostile.with_uids(p, sop_uid="1." + "2" * 70, command_sop_uid="1.2.3"),
            "refused with 0xA900",
        ),
    }
    names = {  # C-STORE's own words (PS3.4 B.2.3); dimse.status shares 0xA900 with C-FIND
        status.SUCCESS: "Success",
        status.OUT_OF_RESOURCES: "Out of Resources",
        status.DATASET_DOES_NOT_MATCH_SOP_CLASS: "Data Set Does Not Match SOP Class",
        status.CANNOT_UNDERSTAND: "Cannot Understand",
    }
    rows = []
    for name, (build, phrase) in crafted.items():

        def run(build=build, phrase=phrase) -> tuple[str, str, str]:
            path = build(work / "crafted.dcm")
            with hostile.store_association(listener.port) as assoc:
                code = hostile.store(assoc, path)
                echoed = hostile.echo(listener.port)
            got = f"0x{code:04X} ({names.get(code, '?')})" if code is not None else "no status"
            return got, phrase, yes(echoed)

        rows.append(measured(listener, name, run))

    def run_storescu() -> tuple[str, str, str]:
        path = hostile.with_uids(work / "long.dcm", sop_uid="1." + "2" * 70)
        got = hostile.storescu(listener.port, path).replace("I: ", "storescu: ")
        return got, "refused with 0xA900", yes(hostile.echo(listener.port))

    rows.append(measured(listener, "C-STORE (DCMTK storescu): UID of 72 characters", run_storescu))
    return rows


def move_cases(listener: Listener) -> list[Row]:
    from pydicom import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as Move

    from dicomnet.models import DicomStudy
    from tests.integration import hostile

    study = DicomStudy.objects.order_by("pk").first()
    assert study is not None
    rows = []
    for name, destination in (
        ("C-MOVE to an unknown AE (NOWHERE)", "NOWHERE"),
        ("C-MOVE to another practice's device (PACSB)", "PACSB"),
    ):

        def run(destination=destination) -> tuple[str, str, str]:
            ae = AE(ae_title="CARESTREAM")
            ae.add_requested_context(Move)
            assoc = ae.associate("127.0.0.1", listener.port, ae_title="NEXREL-CRM")
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.StudyInstanceUID = study.study_instance_uid
            statuses = [f"0x{r.Status:04X}" for r, _ in assoc.send_c_move(query, destination, Move)]
            echoed = hostile.echo(listener.port)
            assoc.release()
            return ", ".join(statuses), "refused with 0xA801", yes(echoed)

        rows.append(measured(listener, name, run))
    return rows


def stow_cases() -> list[tuple[str, str, str]]:
    """(case, status and message, peak Python heap) of each broken STOW-RS body."""
    from django.test import Client

    from dicomnet.dicomweb.tests.test_stow import CONTENT_TYPE, body_of
    from dicomnet.dicomweb.tests.test_stow_hostile import broken_bodies
    from patients.models import User
    from tests.dicom_samples import dicom_bytes
    from tests.integration import hostile

    client = Client()
    client.force_login(User.objects.get(username="clinician"))
    good = dicom_bytes(patient_id="1001", patient_name="Côté^Zoé")
    bodies = {name: (body, CONTENT_TYPE) for name, (body, _) in broken_bodies(good).items()}
    bodies["no boundary in the Content-Type"] = (
        body_of(good),
        'multipart/related; type="application/dicom"',
    )
    bomb = hostile.deflate_bomb(Path("/tmp/nexrel-bench-stow-bomb.dcm")).read_bytes()
    bodies["a deflate bomb part (2 GiB inflated), then a good one"] = (
        body_of(bomb, dicom_bytes(patient_id="1001", patient_name="Côté^Zoé")),
        CONTENT_TYPE,
    )
    rows = []
    for name, (body, content_type) in bodies.items():
        tracemalloc.start()
        response = client.generic("POST", "/dicomweb/studies", body, content_type=content_type)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        detail = response.content.decode(errors="replace")
        if response["Content-Type"].startswith("application/json"):
            detail = response.json().get("detail", detail)
        elif response.status_code in (200, 202, 409):
            detail = f"store response ({len(body)} bytes sent)"
        detail = detail if len(detail) <= 200 else detail[:197] + "..."
        rows.append((name, f"{response.status_code}: {detail}", f"{peak / 2**20:.1f} MB"))
        print(f"  STOW {name}: {response.status_code}", file=sys.stderr, flush=True)
    return rows


# ---------------------------------------------------------------------- set-up and report


def prepare(work: Path) -> dict[str, str]:
    """A migrated, seeded database in ``work``; the env the listeners share with us."""
    if work.exists():
        shutil.rmtree(work)
    (work / "data").mkdir(parents=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nexrel.settings",
        "DATABASE_URL": f"sqlite:///{work / 'nexrel.sqlite3'}",
        "NEXREL_DATA_DIR": str(work / "data"),
        "NEXREL_SPOOL_DIR": str(work / "data" / "spool"),
        "NEXREL_S3_BUCKET": "",
        "DICOM_LISTENER_PROCESSES": "1",
        "LANGUAGE_CODE": "en",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from dicomnet.models import DicomServer
    from nexrel.demo import SECOND_PRACTICE_AE, seed_demo
    from patients.models import Practice
    from tests.dicom_samples import ingest_processed

    call_command("migrate", verbosity=0)
    practice = seed_demo(images=False)
    other = Practice.objects.get(ae_title=SECOND_PRACTICE_AE)
    DicomServer.objects.create(practice=other, name="PACS B", ae_title="PACSB",
                               host="127.0.0.1", port=free_port(), allow_move=True)  # fmt: skip
    ingest_processed(practice, patient_id="1001", patient_name="Côté^Zoé")
    return env


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    python = platform.python_version()
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {python}"


def table(rows: list[Row]) -> str:
    out = [
        "| case | what the peer got | the listener logged | peak RSS | threads "
        "| a C-ECHO meanwhile |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        logged = r.logged.replace("|", "\\|") or "-"
        out.append(
            f"| {r.case} | {r.got} | {logged} | {r.rss_mb:.0f} MB | {r.threads} | {r.concurrent} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/nexrel-bench-hostile"))
    args = parser.parse_args(argv)
    env = prepare(args.work)
    groups: list[tuple[str, dict[str, str], Callable[[Listener], list[Row]]]] = [
        ("defaults", {}, pdu_cases),
        ("DICOM_SOCKET_TIMEOUT=3 DICOM_ACSE_TIMEOUT=4 DICOM_NETWORK_TIMEOUT=4",
         {"DICOM_SOCKET_TIMEOUT": "3", "DICOM_ACSE_TIMEOUT": "4", "DICOM_NETWORK_TIMEOUT": "4"},
         slow_cases),
        ("DICOM_MAX_ASSOCIATIONS=8 (DICOM_MAX_PENDING_PER_HOST=4)",
         {"DICOM_MAX_ASSOCIATIONS": "8"}, one_host_flood),
        ("DICOM_MAX_ASSOCIATIONS=4 DICOM_MAX_CONNECTIONS=8",
         {"DICOM_MAX_ASSOCIATIONS": "4", "DICOM_MAX_CONNECTIONS": "8"}, many_hosts_flood),
        ("defaults", {}, lambda listener: store_cases(listener, args.work)),
        ("defaults", {}, move_cases),
    ]  # fmt: skip
    sections = []
    for settings_used, extra, run in groups:
        print(f"listener with {settings_used}", file=sys.stderr, flush=True)
        listener = Listener(env, args.work, extra)
        try:
            sections.append((settings_used, run(listener)))
        finally:
            listener.stop()
    stow = stow_cases()

    print("## Hostile input at the network edge: measured\n")
    print(f"Machine: {machine()}.  ")
    print("Command: `.venv/bin/python bench/bench_hostile.py` (from the repository root).  ")
    print(
        "Peak RSS is the listener's VmHWM, reset before each case; threads the most seen "
        "(sampled every 10 ms; an idle listener has 3). A C-ECHO meanwhile: a legitimate "
        "association (CARESTREAM) made while the hostile connection is open.\n"
    )
    for settings_used, rows in sections:
        print(f"### Listener: {settings_used}\n")
        print(table(rows) + "\n")
    print("### STOW-RS (in process, Django's test client)\n")
    print("| body | answer | peak Python heap (tracemalloc) |")
    print("|---|---|---|")
    for name, answer, peak in stow:
        print(f"| {name} | {answer.replace('|', '/')} | {peak} |")


if __name__ == "__main__":
    main()
