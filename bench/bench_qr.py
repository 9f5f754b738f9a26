"""Query/retrieve benchmark (issue 4): Nexrel as C-FIND SCP and as C-MOVE destination.

find  C-FIND latency, STUDY level, Study Root, PatientName wildcard, against N studies
      (default 100,000): Nexrel on SQLite, Nexrel on PostgreSQL 15 (throwaway cluster), and
      Orthanc (SQLite index) holding the same studies as real one-image DICOM files (8x8 pixels,
      generated once into bench/corpus/qr-<N>/). Nexrel's rows are bulk_created (with
      patient_name_key = normalise_name(patient_name), since bulk_create skips save()).
      One association per server; each query timed from sending the request to the final
      response, after warm-up queries; p50/p95 per pattern.
move  C-MOVE of the 300-slice CBCT series (bench/corpus/cbct) out of Orthanc into a fresh Nexrel
      listener (DCMTK movescu asks Orthanc to move to NEXREL-CRM; and Nexrel's own
      dicomnet.qr.scu.move), against movescu moving it to DCMTK storescp; and, for reference, the
      same files sent straight to Nexrel with storescu (plain C-STORE ingest). Files/s.

Usage: bench_qr.py [--phases find,move] [--studies 100000] [--reps 30] [--work DIR]
       find only: [--rounds N] [--no-postgres] [--baseline TREE [--baseline-label L]]
                  [--clients pynetdicom,findscu] [--py-spy DIR]
--rounds alternates the servers (all started and loaded first); --baseline measures another
Nexrel tree (a git archive of an earlier commit) in the same run; --py-spy profiles each
Nexrel listener during one more, untimed, pass.
Results: bench/results/qr-<stamp>/results.json and summary.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, _config
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import NODELAY, PY, ROOT, free_port, wait_port  # noqa: E402
from stats import percentile  # noqa: E402

from nexrel import supervisor  # noqa: E402

HERE = ROOT / "bench"
CALLING_AE = "CARESTREAM"  # a demo-practice device with allow_find
SPY = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
UID_ROOT = "1.2.826.0.1.3680043.8.498.4"
SURNAMES = [
    "Tremblay", "Gagnon", "Roy", "Cote", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin",
    "Gagne", "Ouellet", "Pelletier", "Belanger", "Levesque", "Bergeron", "Leblanc", "Paquette",
    "Girard", "Simard", "Boucher",
]  # fmt: skip
GIVEN = ["Marie", "Jean", "Sophie", "Luc", "Julie", "Marc", "Nathalie", "Pierre", "Anne", "Eric"]
PATIENTS = len(SURNAMES) * 100  # "Tremblay07^Luc": 2,000 patients
# (pattern, warm-up + timed repetitions divisor): matches with 100,000 studies in brackets
PATTERNS = [
    ("Tremblay01*", 1),  # 1 patient: 50 studies
    ("Gagnon42*", 1),  # 1 patient: 50 studies
    ("lavoie7*", 2),  # lower case, 10 patients: 500 studies
    ("Bouchard*", 5),  # broader, 100 patients: 5,000 studies
]
SOP_IO = "1.2.840.10008.5.1.4.1.1.1.3"  # Digital Intra-Oral X-Ray Image Storage - Presentation


def study_row(i: int) -> dict:
    p = i % PATIENTS
    date = dt.date(2010, 1, 1) + dt.timedelta(days=(i * 7) % 5000)
    return {
        "uid": f"{UID_ROOT}.1.{i}",
        "series": f"{UID_ROOT}.2.{i}",
        "sop": f"{UID_ROOT}.3.{i}",
        "patient_id": f"QR{p:05d}",
        "patient_name": f"{SURNAMES[p // 100]}{p % 100:02d}^{GIVEN[p % len(GIVEN)]}",
        "birth": dt.date(1940 + p % 60, 1 + p % 12, 1 + p % 28),
        "sex": "MF"[p % 2],
        "date": date,
        "time": dt.time(8 + i % 10, (i * 13) % 60, 0),
        "accession": f"A{i:07d}",
        "description": "Bitewing",
    }


# ------------------------------------------------------------------ corpus and Orthanc


def _write_range(args: tuple[str, int, int]) -> None:
    out, start, stop = args
    for i in range(start, stop):
        r = study_row(i)
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = SOP_IO, r["sop"]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = r["uid"], r["series"]
        ds.PatientName, ds.PatientID = r["patient_name"], r["patient_id"]
        ds.PatientBirthDate, ds.PatientSex = r["birth"].strftime("%Y%m%d"), r["sex"]
        ds.StudyDate, ds.StudyTime = r["date"].strftime("%Y%m%d"), r["time"].strftime("%H%M%S")
        ds.AccessionNumber, ds.StudyDescription = r["accession"], r["description"]
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "IO", 1, 1
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.PixelData = bytes(64)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = SOP_IO
        ds.file_meta.MediaStorageSOPInstanceUID = r["sop"]
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(f"{out}/{i:06d}.dcm", enforce_file_format=True)


def ensure_qr_corpus(n: int) -> Path:
    out = HERE / "corpus" / f"qr-{n}"
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    chunks = [(str(out), s, min(s + 2000, n)) for s in range(0, n, 2000)]
    with Pool(os.cpu_count() or 2) as pool:
        pool.map(_write_range, chunks)
    (out / "done").write_text(str(n))
    return out


class Orthanc:
    """Orthanc from Debian, started on free ports with a configuration in ``work``;
    ``options`` are added to (or replace) the configuration's (bench_dicomweb.py: plugins)."""

    def __init__(self, work: Path, modalities: dict | None = None, options: dict | None = None):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.port, self.http = free_port(), free_port()
        config = {
            "Name": "bench", "HttpPort": self.http, "DicomPort": self.port,
            "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True, "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True,
            "StorageDirectory": str(work / "storage"), "IndexDirectory": str(work / "storage"),
            "SyncStorageArea": False, "StorageCompression": False, "Plugins": [],
            "DefaultEncoding": "Latin1", "SaveJobs": False, "ConcurrentJobs": 2,
            "DicomModalities": modalities or {},
        }  # fmt: skip
        config.update(options or {})
        (work / "orthanc.json").write_text(json.dumps(config))
        self.log = open(work / "orthanc.log", "ab")
        self.proc = subprocess.Popen(
            ["Orthanc", str(work / "orthanc.json")],
            env={**os.environ, **NODELAY}, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        for _ in range(600):
            try:
                self.get("/system")
                break
            except OSError:
                time.sleep(0.1)
        wait_port(self.port)

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=60) as r:
            return json.load(r)

    def post_file(self, path: Path) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http}/instances", data=path.read_bytes(), method="POST"
        )
        urllib.request.urlopen(req, timeout=120).read()

    def load(self, files: list[Path], threads: int = 6) -> None:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(self.post_file, files, chunksize=64):
                pass

    def stop(self) -> None:
        supervisor.stop(self.proc, timeout=60)
        self.log.close()


# ------------------------------------------------------------------ Nexrel databases

BULK = """
import sys, datetime as dt
sys.path.insert(0, {here!r})
from bench_qr import study_row
from dicomnet.models import DicomStudy
from patients.names import normalise_name
from patients.models import Practice
practice = Practice.objects.order_by("pk").first()
rows = (study_row(i) for i in range({n}))
objs = [DicomStudy(practice=practice, study_instance_uid=r["uid"], patient_id=r["patient_id"],
        patient_name=r["patient_name"], patient_name_key=normalise_name(r["patient_name"]),
        patient_birth_date=r["birth"], patient_sex=r["sex"], accession_number=r["accession"],
        study_date=r["date"], study_time=r["time"], study_description=r["description"],
        modality="IO", series_count=1, instance_count=1, status="PROCESSED") for r in rows]
DicomStudy.objects.bulk_create(objs, batch_size=5000)
print(DicomStudy.objects.count())
"""


def nexrel_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "NEXREL_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url or f"sqlite:///{data_dir / 'nexrel.sqlite3'}",
        "NEXREL_S3_BUCKET": "",
        "LOG_LEVEL": "WARNING",
    }


def manage(env: dict, *args: str, stdin: str | None = None, root: Path = ROOT) -> str:
    return subprocess.run(
        [PY, "manage.py", *args], cwd=root, env=env, check=True, text=True,
        capture_output=True, input=stdin,
    ).stdout  # fmt: skip


def prepare_nexrel(env: dict, n: int, root: Path = ROOT) -> None:
    manage(env, "migrate", "-v0", root=root)
    manage(env, "seed_demo", "--no-images", root=root)  # the bench's studies only
    if n:
        manage(env, "shell", "-c", BULK.format(here=str(HERE), n=n), root=root)
        if env["DATABASE_URL"].startswith("postgres"):
            manage(env, "shell", "-c", "from django.db import connection\n"
                   "connection.cursor().execute('VACUUM ANALYZE dicomnet_dicomstudy')",
                   root=root)  # fmt: skip


class Listener:
    def __init__(self, env: dict, log: Path, root: Path = ROOT, processes: int | None = 1):
        """``processes=None``: the setting's (DICOM_LISTENER_PROCESSES) number."""
        self.port = free_port()
        self.log = open(log, "ab")
        count = ["--processes", str(processes)] if processes else []
        self.proc = subprocess.Popen(
            [PY, "manage.py", "dicom_listener", "--port", str(self.port),
             "--address", "127.0.0.1", *count],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_port(self.port, 120)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)  # the listener and its processes
        supervisor.stop(self.proc, timeout=20, group=True)
        self.log.close()


class Postgres:
    BIN = Path("/usr/lib/postgresql/15/bin")

    def __init__(self, root: Path, durable: bool = False):
        """``durable``: fsync and synchronous commit on, as in production; off, the
        bench measures query work alone."""
        self.root = root
        root.mkdir(parents=True)
        self.user = user = "postgres" if os.geteuid() == 0 else None
        if user:
            shutil.chown(root, user=user)  # postgres refuses to run as root
        self.port = free_port()
        subprocess.run(
            [str(self.BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
            check=True, capture_output=True, user=user, cwd=root,
        )  # fmt: skip
        self.proc = subprocess.Popen(
            [str(self.BIN / "postgres"), "-D", str(root / "data"), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", str(root), *self._durability(durable),
             "-c", "shared_buffers=256MB", "-c", "max_connections=200"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, user=user, cwd=root,
        )  # fmt: skip
        wait_port(self.port)
        time.sleep(1)
        self.url = self.create("nexrel")

    def create(self, name: str) -> str:
        """A new database in the cluster, as a DATABASE_URL."""
        subprocess.run(
            [str(self.BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", name],
            check=True, user=self.user, cwd=self.root,
        )  # fmt: skip
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    @staticmethod
    def _durability(durable: bool) -> list[str]:
        return [] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off"]

    def stop(self) -> None:
        supervisor.stop(self.proc, sig=signal.SIGINT, timeout=30)  # fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------ C-FIND latency


def find_query(pattern: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = pattern
    for keyword in ("PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                    "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription",
                    "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                    "NumberOfStudyRelatedInstances"):  # fmt: skip
        setattr(ds, keyword, "")
    return ds


def cpu_ms(pid: int | None) -> float:
    """CPU time (user + system, every thread) the process has used so far, in ms."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


FINDSCU_KEYS = ("PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                "StudyTime", "AccessionNumber", "StudyDescription", "ModalitiesInStudy",
                "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")  # fmt: skip


def findscu_query(port: int, aec: str, pattern: str) -> tuple[int, int | None]:
    """One query by DCMTK findscu (its own association): (matches, final status)."""
    argv = ["findscu", "-v", "-S", "-aet", CALLING_AE, "-aec", aec,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"PatientName={pattern}"]  # fmt: skip
    for keyword in FINDSCU_KEYS:
        argv += ["-k", keyword]
    done = subprocess.run(
        [*argv, "127.0.0.1", str(port)], capture_output=True, text=True,
        env={**os.environ, **NODELAY},
    )  # fmt: skip
    lines = (done.stdout + done.stderr).splitlines()
    matches = sum(1 for line in lines if "Find Response:" in line and "(Pending)" in line)
    success = done.returncode == 0 and any("(Success)" in line for line in lines)
    return matches, 0x0000 if success else None


def find_latency(
    port: int,
    aec: str,
    reps: int,
    warmup: int = 3,
    label: str = "",
    pid: int | None = None,
    client: str = "pynetdicom",
) -> dict:
    """Per pattern: the timed queries after ``warmup`` (``times_ms``), the first one of this
    association (``first_ms``: cold caches on the first round), and for the timed ones the
    CPU the server process (``pid``) and this client spent (``server_cpu_ms``,
    ``client_cpu_ms``): CPU time is far less sensitive than latency to a busy machine.
    ``client`` "findscu": each query is a DCMTK findscu process and association instead
    (its CPU is the children's, read from ``os.times``)."""
    # pynetdicom pretty-prints every identifier for its log even when the log is off
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False
    assoc = None
    if client == "pynetdicom":
        ae = AE(ae_title=CALLING_AE)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate("127.0.0.1", port, ae_title=aec)
        if not assoc.is_established:
            raise RuntimeError(f"association with {aec} on {port} failed")
        # Nagle's algorithm on our side would add ~40 ms to every query
        assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    results = {}
    try:
        for pattern, divisor in PATTERNS:
            ds = find_query(pattern)
            times, matches, first = [], 0, 0.0
            server_cpu, client_cpu = [], []
            for k in range(warmup + max(5, reps // divisor)):
                server_start, client_start = cpu_ms(pid), client_cpu_s(client)
                start = time.perf_counter()
                count, final = 0, None
                if assoc is None:
                    count, final = findscu_query(port, aec, pattern)
                else:
                    for status, _identifier in assoc.send_c_find(
                        ds, StudyRootQueryRetrieveInformationModelFind
                    ):
                        if status and status.Status in (0xFF00, 0xFF01):
                            count += 1
                        else:
                            final = status.Status if status else None
                elapsed = time.perf_counter() - start
                if final != 0x0000:
                    raise RuntimeError(f"C-FIND {pattern} on {aec}: final status {final!r}")
                if k == 0:
                    first = elapsed * 1000
                if k >= warmup:
                    times.append(elapsed * 1000)
                    server_cpu.append(cpu_ms(pid) - server_start)
                    client_cpu.append((client_cpu_s(client) - client_start) * 1000)
                matches = count
            results[pattern] = {
                "matches": matches, "first_ms": first, "times_ms": times,
                "server_cpu_ms": server_cpu, "client_cpu_ms": client_cpu,
            }  # fmt: skip
            print(f"  {label or aec:28} {pattern:12} {matches:5} matches  p50 "
                  f"{percentile(times, 50):8.1f} ms  p95 {percentile(times, 95):8.1f} ms  "
                  f"first {first:8.1f} ms  CPU server {statistics.mean(server_cpu):7.1f} "
                  f"client {statistics.mean(client_cpu):7.1f} ms", flush=True)  # fmt: skip
    finally:
        if assoc is not None:
            assoc.release()
    return results


def client_cpu_s(client: str) -> float:
    times = os.times()
    if client == "findscu":
        return times.children_user + times.children_system
    return times.user + times.system


def summarise(rounds: list[dict]) -> dict:
    """The rounds of one server pooled: p50/p95 over every timed query, first queries kept."""
    out = {}
    for pattern, _ in PATTERNS:
        times = [t for r in rounds for t in r[pattern]["times_ms"]]
        server_cpu = [t for r in rounds for t in r[pattern]["server_cpu_ms"]]
        client_cpu = [t for r in rounds for t in r[pattern]["client_cpu_ms"]]
        out[pattern] = {
            "matches": rounds[-1][pattern]["matches"], "n": len(times),
            "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
            "mean_ms": statistics.mean(times),
            "server_cpu_ms": statistics.mean(server_cpu),
            "client_cpu_ms": statistics.mean(client_cpu),
            "first_ms": [r[pattern]["first_ms"] for r in rounds], "times_ms": times,
        }  # fmt: skip
    return out


def py_spy(pid: int, out: Path, port: int, aec: str, reps: int) -> None:
    """``py-spy record`` on the listener while ``lavoie7*`` runs once more (untimed): raw
    stacks in ``out`` (.txt), and the top functions by own and total samples (.top.txt)."""
    spy = subprocess.Popen(
        [SPY, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
         "--threads", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    time.sleep(2)  # py-spy attached
    patterns = PATTERNS[:]
    PATTERNS[:] = [("lavoie7*", 1)]  # 500 matches: the per-answer cost, as at 5,000
    try:
        find_latency(port, aec, reps, warmup=1, label=f"{out.stem} (py-spy)")
    finally:
        PATTERNS[:] = patterns
        supervisor.stop(spy, sig=signal.SIGINT, timeout=60)
    out.with_suffix(".top.txt").write_text(top_functions(out))


# Leaf frames of a thread waiting (py-spy samples them here: its idle detection does not
# see the waits of pynetdicom's reactor loops, which sleep 1 ms between polls).
IDLE_LEAVES = {
    "Condition.wait", "Event.wait", "_PollLikeSelector.select", "DULServiceProvider.run_reactor",
    "Association._run_reactor", "BaseServer.serve_forever", "start_heartbeat.<locals>.beat",
}  # fmt: skip
ANSWERING = "ServiceClass._c_find_scp"


def _frames(stack: str) -> list[str]:
    """``function (file)`` of each frame of a py-spy raw stack, the thread left out."""
    out = []
    for frame in stack.split(";")[1:]:
        function, _, where = frame.partition(" (")
        out.append(f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})")
    return out


def top_functions(raw: Path, n: int = 25) -> str:
    """py-spy's raw stacks as text: the top functions by own and total samples, in percent
    of the busy samples (leaves in IDLE_LEAVES left out), then what the C-FIND answering
    (``ServiceClass._c_find_scp``) spends its samples on, two frames deep."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    answering: dict[str, int] = {}
    busy = idle = answer_samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = _frames(stack)
        k = int(count)
        if not frames or frames[-1].split(" (")[0] in IDLE_LEAVES:
            idle += k
            continue
        busy += k
        own[frames[-1]] = own.get(frames[-1], 0) + k
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + k
        at = next((i for i, f in enumerate(frames) if f.startswith(ANSWERING + " ")), None)
        if at is not None:
            answer_samples += k
            below = " > ".join(frames[at + 1 : at + 3]) or "(own)"
            answering[below] = answering.get(below, 0) + k
    lines = [f"{busy} busy samples ({idle} idle left out); "
             f"{answer_samples} in {ANSWERING}", "", "own %  function"]  # fmt: skip
    for frame, k in sorted(own.items(), key=lambda x: -x[1])[:n]:
        lines.append(f"{100 * k / busy:5.1f}  {frame}")
    lines += ["", "total %  function"]
    for frame, k in sorted(total.items(), key=lambda x: -x[1])[:n]:
        lines.append(f"{100 * k / busy:5.1f}  {frame}")
    lines += ["", f"% of {ANSWERING}  below it"]
    for frame, k in sorted(answering.items(), key=lambda x: -x[1])[:n]:
        lines.append(f"{100 * k / max(answer_samples, 1):5.1f}  {frame}")
    return "\n".join(lines) + "\n"


def migrations(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("*/migrations/0*.py"))


def phase_find(cfg, work: Path, record: dict) -> None:
    """Every server started and loaded first, then ``--rounds`` rounds in which each is
    queried in turn (the starting server rotating), so that a busy spell of the machine
    falls on all of them; a server's figures pool its rounds."""
    corpus = ensure_qr_corpus(cfg.studies)
    files = sorted(corpus.glob("*.dcm"))[: cfg.studies]
    out = record.setdefault("find", {})
    trees = [("Nexrel", ROOT)] + ([(cfg.baseline_label, cfg.baseline)] if cfg.baseline else [])
    backends = ["SQLite"] + ([] if cfg.no_postgres else ["PostgreSQL"])
    stops: list = []
    servers: list[tuple[str, int, str, int | None]] = []  # label, port, called AE, listener pid
    try:
        # Orthanc: the storage is kept between runs in --work (loading takes minutes)
        orthanc = Orthanc(work / "orthanc-find")
        stops.append(orthanc.stop)
        have = orthanc.get("/statistics")["CountStudies"]
        if have < len(files):
            start = time.perf_counter()
            orthanc.load(files[max(0, have - 100) :])  # resumes a kept storage
            print(f"Orthanc loaded {len(files)} in {time.perf_counter() - start:.0f} s", flush=True)
        out["orthanc_studies"] = orthanc.get("/statistics")["CountStudies"]
        servers.append(("Orthanc", orthanc.port, "ORTHANC", orthanc.proc.pid))
        pg = None
        if "PostgreSQL" in backends:
            shutil.rmtree(work / "pg", ignore_errors=True)
            pg = Postgres(work / "pg")
            stops.append(pg.stop)
        seeded: dict[str, dict] = {}  # backend -> env of the databases of ROOT
        for name, root in trees:
            for backend in backends:
                label = f"{name} ({backend})"
                data = work / f"nexrel-{name}-{backend}".replace(" ", "-")
                shutil.rmtree(data, ignore_errors=True)
                data.mkdir(parents=True)
                stops.append(lambda data=data: shutil.rmtree(data, ignore_errors=True))
                if backend in seeded and migrations(root) == migrations(ROOT):
                    env = seeded[backend]  # same schema: the baseline reads the same rows
                else:
                    url = None
                    if pg is not None and backend == "PostgreSQL":
                        url = pg.url if name == "Nexrel" else pg.create(f"nexrel_{len(servers)}")
                    env = nexrel_env(data, url)
                    start = time.perf_counter()
                    prepare_nexrel(env, cfg.studies, root=root)
                    print(f"{label} seeded in {time.perf_counter() - start:.0f} s", flush=True)
                    seeded.setdefault(backend, env)
                listener = Listener(env, data / "listener.log", root=root)
                stops.insert(0, listener.stop)
                servers.append((label, listener.port, "NEXREL-CRM", listener.proc.pid))
        clients = cfg.clients.split(",")
        rounds: dict[str, list[dict]] = {}
        for k in range(cfg.rounds):
            print(f"round {k + 1} of {cfg.rounds}", flush=True)
            turn = servers[k % len(servers) :] + servers[: k % len(servers)]
            for label, port, aec, pid in turn:
                for client in clients:
                    key = label if client == "pynetdicom" else f"{label}, {client}"
                    rounds.setdefault(key, []).append(
                        find_latency(port, aec, cfg.reps, warmup=3 if k == 0 else 1,
                                     label=key, pid=pid, client=client)
                    )  # fmt: skip
        for label, done in rounds.items():
            out[label] = summarise(done)
        if cfg.py_spy:
            cfg.py_spy.mkdir(parents=True, exist_ok=True)
            for label, port, aec, pid in servers:
                if label != "Orthanc":
                    stem = label.replace(" (", "-").rstrip(")").replace(" ", "-")
                    py_spy(pid, cfg.py_spy / f"{stem}.txt", port, aec, cfg.reps)
    finally:
        for stop in stops:
            stop()


# ------------------------------------------------------------------ C-MOVE throughput

REGISTER = """
from dicomnet.models import DicomServer
from patients.models import Practice
DicomServer.objects.update_or_create(
    practice=Practice.objects.order_by("pk").first(), ae_title="ORTHANC",
    defaults=dict(name="Orthanc", host="127.0.0.1", port={port}, allow_store=True,
                  allow_find=True, allow_move=True, check_host=False))
"""

SCU_MOVE = """
import time
from dicomnet.qr import scu
from dicomnet.models import DicomServer
server = DicomServer.objects.get(ae_title="ORTHANC")
start = time.perf_counter()
last = None
for last in scu.move(server, study_uids=[{uid!r}]):
    pass
print("ELAPSED", time.perf_counter() - start, last)
"""


def nexrel_instances(data: Path) -> int:
    with sqlite3.connect(data / "nexrel.sqlite3") as db:
        return db.execute("select count(*) from dicomnet_dicominstance").fetchone()[0]


def movescu(port: int, dest: str, study: str, series: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["movescu", "-S", "-aet", "BENCHSCU", "-aec", "ORTHANC", "-aem", dest,
         "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}",
         "-k", f"SeriesInstanceUID={series}", "127.0.0.1", str(port)],
        check=True, env={**os.environ, **NODELAY}, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


CASES = ("storescp", "nexrel-movescu", "nexrel-scu.move", "nexrel-storescu")


def phase_move(cfg, work: Path, record: dict) -> None:
    import pydicom

    files = sorted((HERE / "corpus" / "cbct").rglob("*.dcm"))
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    study, series = str(first.StudyInstanceUID), str(first.SeriesInstanceUID)
    megabytes = sum(f.stat().st_size for f in files) / 1e6
    template = work / "move-template"
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    nexrel_port, scp_port = free_port(), free_port()
    modalities = {
        "nexrel": ["NEXREL-CRM", "127.0.0.1", nexrel_port],
        "dcmtk": ["STORESCP", "127.0.0.1", scp_port],
        "bench": ["BENCHSCU", "127.0.0.1", 1],
    }
    shutil.rmtree(work / "orthanc-move", ignore_errors=True)
    orthanc = Orthanc(work / "orthanc-move", modalities)
    rows = record.setdefault("move", {"files": len(files), "MB": megabytes, "runs": []})
    try:
        orthanc.load(files)
        env = nexrel_env(template)
        prepare_nexrel(env, 0)
        manage(env, "shell", "-c", REGISTER.format(port=orthanc.port))
        for rep in range(cfg.move_reps):
            for case in CASES:
                run = work / "move-run"
                shutil.rmtree(run, ignore_errors=True)
                (run / "out").mkdir(parents=True)
                if case == "storescp":
                    proc = subprocess.Popen(
                        ["storescp", "-od", str(run / "out"), "-aet", "STORESCP", str(scp_port)],
                        env={**os.environ, **NODELAY}, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    wait_port(scp_port)
                    wall = movescu(orthanc.port, "STORESCP", study, series)
                    stored = sum(1 for _ in (run / "out").iterdir())
                    supervisor.stop(proc)
                else:
                    shutil.copy(template / "nexrel.sqlite3", run / "nexrel.sqlite3")
                    renv = nexrel_env(run)
                    listener = Listener.__new__(Listener)
                    listener.port = nexrel_port
                    listener.log = open(run / "listener.log", "ab")
                    listener.proc = subprocess.Popen(
                        [PY, "manage.py", "dicom_listener", "--port", str(nexrel_port),
                         "--address", "127.0.0.1", "--processes", "1"],
                        cwd=ROOT, env=renv, stdout=listener.log, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip
                    wait_port(nexrel_port, 120)
                    try:
                        if case == "nexrel-storescu":  # plain C-STORE ingest, same files
                            start = time.perf_counter()
                            subprocess.run(
                                ["storescu", "-aet", "ORTHANC", "-aec", "NEXREL-CRM",
                                 "127.0.0.1", str(nexrel_port), *map(str, files)],
                                check=True, env={**os.environ, **NODELAY}, capture_output=True,
                            )  # fmt: skip
                            wall = time.perf_counter() - start
                        elif case == "nexrel-movescu":
                            wall = movescu(orthanc.port, "NEXREL-CRM", study, series)
                        else:
                            text = manage(renv, "shell", "-c", SCU_MOVE.format(uid=study))
                            line = next(x for x in text.splitlines() if x.startswith("ELAPSED"))
                            wall = float(line.split()[1])
                        stored = nexrel_instances(run)
                    finally:
                        listener.stop()
                row = {"case": case, "rep": rep, "seconds": wall, "stored": stored,
                       "files_s": len(files) / wall, "MB_s": megabytes / wall}  # fmt: skip
                rows["runs"].append(row)
                print(f"  {case:16} {wall:6.2f} s  {row['files_s']:6.1f} files/s  "
                      f"{stored}/{len(files)}", flush=True)  # fmt: skip
    finally:
        orthanc.stop()
        shutil.rmtree(work / "orthanc-move", ignore_errors=True)
        shutil.rmtree(work / "move-run", ignore_errors=True)
        shutil.rmtree(template, ignore_errors=True)


# ------------------------------------------------------------------ report


def report(record: dict) -> str:
    lines = []
    find = record.get("find")
    if find:
        lines += [
            f"C-FIND, STUDY level, {record['studies']} studies "
            f"(Orthanc holds {find.get('orthanc_studies')})",
            "",
            "| pattern | matches | server | p50 ms | p95 ms | p50 vs Orthanc | server CPU ms "
            "| client CPU ms | first query ms |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        servers = [k for k in find if isinstance(find[k], dict)]
        for pattern, _ in PATTERNS:
            for server in servers:
                r = find[server].get(pattern)
                if not r:
                    continue
                _, comma, client = server.partition(", ")
                base = find.get(f"Orthanc{comma}{client}", {}).get(pattern, {}).get("p50_ms")
                ratio = f"{r['p50_ms'] / base:.2f}x" if base else "-"
                cpu = "- | -"
                if "server_cpu_ms" in r:
                    cpu = f"{r['server_cpu_ms']:.0f} | {r['client_cpu_ms']:.0f}"
                first = ", ".join(f"{t:.0f}" for t in r.get("first_ms", []))
                lines.append(f"| `{pattern}` | {r['matches']} | {server} | {r['p50_ms']:.1f} | "
                             f"{r['p95_ms']:.1f} | {ratio} | {cpu} | {first} |")  # fmt: skip
        lines.append("")
    move = record.get("move")
    if move:
        lines += ["| C-MOVE of the CBCT series | median s | files/s | MB/s | vs storescp |",
                  "|---|---:|---:|---:|---:|"]  # fmt: skip
        medians = {}
        for case in CASES:
            secs = [r["seconds"] for r in move["runs"] if r["case"] == case]
            if secs:
                medians[case] = statistics.median(secs)
        for case, secs in medians.items():
            ratio = medians["storescp"] / secs
            lines.append(
                f"| {case} | {secs:.2f} | {move['files'] / secs:.1f} | "
                f"{move['MB'] / secs:.1f} | {ratio:.2f}x |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default="find,move")
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--move-reps", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/nexrel-bench-qr"))
    parser.add_argument(
        "--keep-orthanc", action="store_true", help="keep Orthanc's loaded storage in --work"
    )
    parser.add_argument("--rounds", type=int, default=1, help="find: servers queried in turn")
    parser.add_argument("--no-postgres", action="store_true", help="find: SQLite only")
    parser.add_argument(
        "--clients", default="pynetdicom", help="find: pynetdicom (one association) and/or "
        "findscu (DCMTK, a process and association per query), comma-separated",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", type=Path, help="find: another Nexrel tree (e.g. a git archive of an "
        "earlier commit) measured in the same run, with its own databases",
    )  # fmt: skip
    parser.add_argument("--baseline-label", default="baseline")
    parser.add_argument(
        "--py-spy", type=Path, help="find: profile each Nexrel listener (py-spy) into DIR"
    )
    cfg = parser.parse_args()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = HERE / "results" / f"qr-{stamp}"
    results.mkdir(parents=True)
    record = {"studies": cfg.studies, "started": stamp}
    phases = cfg.phases.split(",")
    try:
        if "find" in phases:
            phase_find(cfg, cfg.work, record)
        if "move" in phases:
            phase_move(cfg, cfg.work, record)
    finally:
        (results / "results.json").write_text(json.dumps(record, indent=1, default=str))
        (results / "summary.md").write_text(report(record))
        if not cfg.keep_orthanc:
            shutil.rmtree(cfg.work / "orthanc-find", ignore_errors=True)
    print(report(record))
    print(f"results: {results}")


if __name__ == "__main__":
    main()
