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


def manage(env: dict, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True,
        capture_output=True, input=stdin,
    ).stdout  # fmt: skip


def prepare_nexrel(env: dict, n: int) -> None:
    manage(env, "migrate", "-v0")
    manage(env, "seed_demo", "--no-images")  # the bench's studies only
    if n:
        manage(env, "shell", "-c", BULK.format(here=str(HERE), n=n))
        if env["DATABASE_URL"].startswith("postgres"):
            manage(env, "shell", "-c", "from django.db import connection\n"
                   "connection.cursor().execute('VACUUM ANALYZE dicomnet_dicomstudy')")  # fmt: skip


class Listener:
    def __init__(self, env: dict, log: Path, processes: int | None = 1):
        """``processes=None``: the setting's (DICOM_LISTENER_PROCESSES) number."""
        self.port = free_port()
        self.log = open(log, "ab")
        count = ["--processes", str(processes)] if processes else []
        self.proc = subprocess.Popen(
            [PY, "manage.py", "dicom_listener", "--port", str(self.port),
             "--address", "127.0.0.1", *count],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
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
        user = "postgres" if os.geteuid() == 0 else None
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
        subprocess.run(
            [str(self.BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "nexrel"],
            check=True, user=user, cwd=root,
        )  # fmt: skip
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/nexrel"

    @staticmethod
    def _durability(durable: bool) -> list[str]:
        return [] if durable else ["-c", "fsync=off", "-c", "synchronous_commit=off"]

    def stop(self) -> None:
        supervisor.stop(self.proc, sig=signal.SIGINT, timeout=30)  # fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------ C-FIND latency


def find_latency(port: int, aec: str, reps: int, warmup: int = 3) -> dict:
    # pynetdicom pretty-prints every identifier for its log even when the log is off
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False
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
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.PatientName = pattern
            for keyword in ("PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                            "StudyDate", "StudyTime", "AccessionNumber", "StudyDescription",
                            "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
                            "NumberOfStudyRelatedInstances"):  # fmt: skip
                setattr(ds, keyword, "")
            times, matches = [], 0
            for k in range(warmup + max(5, reps // divisor)):
                start = time.perf_counter()
                count, final = 0, None
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
                if k >= warmup:
                    times.append(elapsed * 1000)
                matches = count
            results[pattern] = {
                "matches": matches, "n": len(times), "p50_ms": percentile(times, 50),
                "p95_ms": percentile(times, 95), "mean_ms": statistics.mean(times),
            }  # fmt: skip
            print(f"  {aec:10} {pattern:12} {matches:5} matches  p50 "
                  f"{results[pattern]['p50_ms']:8.1f} ms  p95 {results[pattern]['p95_ms']:8.1f} ms",
                  flush=True)  # fmt: skip
    finally:
        assoc.release()
    return results


def phase_find(cfg, work: Path, record: dict) -> None:
    corpus = ensure_qr_corpus(cfg.studies)
    files = sorted(corpus.glob("*.dcm"))[: cfg.studies]
    out = record.setdefault("find", {})
    # Orthanc: the storage is kept between runs in --work (loading takes minutes)
    orthanc = Orthanc(work / "orthanc-find")
    try:
        have = orthanc.get("/statistics")["CountStudies"]
        if have < len(files):
            start = time.perf_counter()
            orthanc.load(files[max(0, have - 100) :])  # resumes a kept storage
            print(f"Orthanc loaded {len(files)} in {time.perf_counter() - start:.0f} s", flush=True)
        out["orthanc_studies"] = orthanc.get("/statistics")["CountStudies"]
        out["Orthanc"] = find_latency(orthanc.port, "ORTHANC", cfg.reps)
    finally:
        orthanc.stop()
    for backend in ("SQLite", "PostgreSQL"):
        data = work / f"nexrel-{backend}"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        pg = Postgres(work / "pg") if backend == "PostgreSQL" else None
        try:
            env = nexrel_env(data, pg.url if pg else None)
            start = time.perf_counter()
            prepare_nexrel(env, cfg.studies)
            print(f"Nexrel/{backend} seeded in {time.perf_counter() - start:.0f} s", flush=True)
            listener = Listener(env, data / "listener.log")
            try:
                out[f"Nexrel ({backend})"] = find_latency(listener.port, "NEXREL-CRM", cfg.reps)
            finally:
                listener.stop()
        finally:
            if pg:
                pg.stop()
            shutil.rmtree(data, ignore_errors=True)


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
        orth = find.get("Orthanc", {})
        lines += [
            f"C-FIND, STUDY level, {record['studies']} studies "
            f"(Orthanc holds {find.get('orthanc_studies')})",
            "",
            "| pattern | matches | server | p50 ms | p95 ms | p50 vs Orthanc |",
            "|---|---:|---|---:|---:|---:|",
        ]
        for pattern, _ in PATTERNS:
            for server in ("Nexrel (SQLite)", "Nexrel (PostgreSQL)", "Orthanc"):
                r = find.get(server, {}).get(pattern)
                if not r:
                    continue
                base = orth.get(pattern, {}).get("p50_ms")
                ratio = f"{r['p50_ms'] / base:.2f}x" if base else "-"
                lines.append(f"| `{pattern}` | {r['matches']} | {server} | {r['p50_ms']:.1f} | "
                             f"{r['p95_ms']:.1f} | {ratio} |")  # fmt: skip
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
