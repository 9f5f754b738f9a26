#!/usr/bin/env python3
"""`make bench`: Nexrel's C-STORE ingest against reference receivers, in one run.

Every receiver gets the same corpus from the same client, DCMTK `storescu` (C++, so the
client is not the bottleneck), over 1 association and over 4 parallel ones:

  dcmtk       DCMTK storescp --fork, writing to disk (the reference: ratios are to it)
  pynetdicom  bare pynetdicom storescp (bench/pynd_scp.py --mode raw), 16 KiB max PDU
  orthanc     Orthanc from Debian, SQLite index, SyncStorageArea on
  nexrel      `manage.py dicom_listener`, durability on (fsync + row + task per object),
              SQLite and local storage; `nexrel-2p` runs two processes on one port
  nexrel-polling
              nexrel with DICOM_EVENT_DRIVEN_REACTOR off (pynetdicom's polling reactors)
  nexrel-before, nexrel-before-2p
              the same from another tree (--before DIR, e.g. `git archive` of an older
              commit), alternating with the rest: before and after in one run
  fsync-probe no receiver: the corpus's file sizes written, fsynced and renamed into a
              directory of the same filesystem (bench/fsync_probe.py), by as many writers
              as the case has associations. Its files/s over storescp's is the durable
              ceiling; the report gives every receiver's files/s over the probe's too.

Cases alternate receivers over --reps repetitions; the report gives medians.
Then, with a django-q2 worker running, the latency from C-STORE acknowledgement to a
linked preview (p50/p95), and the listener's peak memory while a CBCT series arrives.

Results: bench/results/<stamp>/results.jsonl and summary.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pydicom

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # for bench/stats.py when imported from another script
sys.path.insert(0, str(ROOT))  # for nexrel.supervisor
from fsync_probe import probe  # noqa: E402
from stats import percentile  # noqa: E402

from nexrel import supervisor  # noqa: E402

PY = sys.executable
NODELAY = {"TCP_NODELAY": "1"}  # DCMTK tools read this; without it Nagle costs ~20x
CALLING_AE = "CARESTREAM"  # a device of the demo practice, so Nexrel accepts it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def descendants(pid: int) -> list[int]:
    found, frontier = [], {pid}
    while frontier:
        nxt = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError):
                    continue
                if ppid in frontier:
                    nxt.add(int(entry))
        found += nxt
        frontier = nxt
    return found


def peak_rss_mb(pid: int) -> float:
    """Largest VmHWM among the process and its descendants (each listener process)."""
    peak = 0
    for p in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
    return peak / 1024


# ------------------------------------------------------------------ corpus


def ensure_corpus() -> dict[str, Path]:
    corpora = {
        "dental": ["--intraoral", "200", "--panoramic", "50"],
        "cbct": ["--intraoral", "0", "--panoramic", "0", "--cbct-slices", "300"],
    }
    out = {}
    for name, extra in corpora.items():
        path = HERE / "corpus" / name
        if not path.is_dir():
            subprocess.run(
                [PY, str(HERE / "vendor" / "make_corpus.py"), "dental", "--out", str(path), *extra],
                check=True,
            )
        out[name] = path
    return out


def corpus_files(path: Path) -> list[str]:
    return sorted(str(p) for p in path.rglob("*.dcm"))


# --------------------------------------------------------------- receivers


class Receiver:
    """One receiver process, started fresh with empty storage for each case."""

    def __init__(self, name: str, work: Path, nexrel_template: Path, before: Path | None = None):
        self.name, self.work, self.template = name, work / name, nexrel_template
        self.root = ROOT
        if name.startswith("nexrel-before"):
            if before is None:
                raise SystemExit(f"{name} needs --before DIR")
            self.root = before
        self.port = free_port()
        self.aec = "ANY-SCP"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.log = open(self.work / "receiver.log", "wb")
        cmd, env = self._command()
        self.proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, cwd=self.root, stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            if name == "orthanc":
                self._wait_orthanc()
            wait_port(self.port, timeout=120)  # Django and two processes, on a busy machine
        except RuntimeError:
            self.stop()
            raise
        if name.startswith("nexrel"):
            # wait_port's probe connection counts against DICOM_MAX_PENDING_PER_HOST (4)
            # until the listener has seen it close: on a busy machine that can take long
            # enough for the 4th parallel storescu to be refused at accept.
            time.sleep(1.5)

    def _command(self) -> tuple[list[str], dict]:
        out = self.work / "out"
        out.mkdir()
        if self.name == "dcmtk":
            return ["storescp", "--fork", "-od", str(out), "-aet", "STORESCP", str(self.port)], (
                NODELAY
            )
        if self.name == "pynetdicom":
            cmd = [
                PY,
                str(HERE / "vendor" / "pynd_scp.py"),
                "--port",
                str(self.port),
                "--mode",
                "raw",
            ]
            return cmd + ["--nodelay", "--out", str(out)], {}
        if self.name == "orthanc":
            self.http = free_port()
            config = {
                "Name": "bench", "HttpPort": self.http, "DicomPort": self.port,
                "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
                "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
                "DicomAlwaysAllowStore": True, "DicomAlwaysAllowEcho": True,
                "StorageDirectory": str(out), "IndexDirectory": str(out),
                "SyncStorageArea": True, "StorageCompression": False, "Plugins": [],
                "DefaultEncoding": "Utf8", "SaveJobs": False,
            }  # fmt: skip
            (self.work / "orthanc.json").write_text(json.dumps(config))
            return ["Orthanc", str(self.work / "orthanc.json")], NODELAY
        # nexrel / nexrel-2p: a copy of the migrated, seeded template database
        shutil.copy(self.template / "nexrel.sqlite3", self.work / "nexrel.sqlite3")
        self.aec = "NEXREL-CRM"
        processes = "2" if self.name.endswith("-2p") else "1"
        env = nexrel_env(self.work)
        if self.name == "nexrel-polling":  # this tree with pynetdicom's own reactors
            env["DICOM_EVENT_DRIVEN_REACTOR"] = "false"
        return [
            PY, "manage.py", "dicom_listener", "--port", str(self.port),
            "--address", "127.0.0.1", "--processes", processes,
        ], env  # fmt: skip

    def _wait_orthanc(self) -> None:
        import urllib.request

        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.http}/system", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("Orthanc did not start")

    def stored(self) -> int:
        if self.name.startswith("nexrel"):
            with sqlite3.connect(self.work / "nexrel.sqlite3") as db:
                return db.execute("select count(*) from dicomnet_dicominstance").fetchone()[0]
        if self.name == "orthanc":
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/statistics") as r:
                return json.load(r)["CountInstances"]
        return sum(1 for p in (self.work / "out").rglob("*") if p.is_file())

    def stop(self) -> None:
        supervisor.stop(self.proc, timeout=20)
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


def nexrel_env(data_dir: Path) -> dict[str, str]:
    return {
        "NEXREL_DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'nexrel.sqlite3'}",
        "NEXREL_S3_BUCKET": "",
        "LOG_LEVEL": "WARNING",
    }


def make_nexrel_template(work: Path, dental: Path) -> Path:
    """Migrated database with the demo practice and the corpus's patients (so studies link)."""
    template = work / "template"
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    env = {**os.environ, **nexrel_env(template)}
    manage = [PY, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    # Without the demo's radiographs: the corpus is all the bench stores.
    subprocess.run(
        [*manage, "seed_demo", "--no-images"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    patients = {}
    for path in corpus_files(dental):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        patients[str(ds.PatientID)] = (str(ds.PatientName), str(ds.PatientBirthDate))
    code = (
        "import json,sys,datetime as dt\n"
        "from patients.models import Patient, Practice\n"
        "p = Practice.objects.order_by('pk').first()\n"
        "for pid, (name, dob) in json.loads(sys.stdin.read()).items():\n"
        "    family, _, given = name.partition('^')\n"
        "    Patient.objects.update_or_create(practice=p, chart_number=pid, defaults=dict(\n"
        "        family_name=family, given_name=given.split('^')[0],\n"
        "        birth_date=dt.datetime.strptime(dob, '%Y%m%d').date()))\n"
    )
    subprocess.run(
        [*manage, "shell", "-c", code],
        cwd=ROOT, env=env, check=True, input=json.dumps(patients), text=True,
    )  # fmt: skip
    return template


# ------------------------------------------------------------------ client


def send(port: int, aec: str, files: list[str], associations: int) -> float:
    """storescu over `associations` parallel processes; returns wall seconds."""
    groups = [files[i::associations] for i in range(associations)]
    env = {**os.environ, **NODELAY}
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["storescu", "-aet", CALLING_AE, "-aec", aec, "127.0.0.1", str(port), *group],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for group in groups
    ]
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - start
    for p, err in zip(procs, errors, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode(errors='replace')[-500:]}")
    return wall


# ------------------------------------------------------------------ phases


PROBE = "fsync-probe"


def store_record(name, corpus, k, rep, files, size, wall, stored, peak) -> dict:
    return {
        "phase": "store", "receiver": name, "corpus": corpus, "k": k,
        "rep": rep, "files": len(files), "bytes": size, "wall_s": wall,
        "files_per_s": len(files) / wall, "mb_per_s": size / wall / 1e6,
        "stored": stored, "peak_rss_mb": peak,
    }  # fmt: skip


def run_case(cfg, name: str, template: Path, files: list[str], k: int) -> tuple[float, int, float]:
    """One receiver, fresh, sent ``files`` over ``k`` associations: (wall s, stored, peak MB).

    A case that fails (a receiver slow to start on a busy machine, a refused association)
    is tried once more before the error propagates.
    """
    for attempt in (1, 2):
        rx = Receiver(name, cfg.work, template, cfg.before)
        try:
            wall = send(rx.port, rx.aec, files, k)
            time.sleep(0.2)
            return wall, rx.stored(), peak_rss_mb(rx.proc.pid)
        except RuntimeError as exc:
            if attempt == 2:
                raise
            print(f"  {name} k={k}: {exc}; trying again", flush=True)
        finally:
            rx.stop()
    raise AssertionError("unreachable")


def phase_store(cfg, corpora, template, record) -> None:
    for rep in range(cfg.reps):
        names = (
            cfg.receivers[rep % len(cfg.receivers) :] + cfg.receivers[: rep % len(cfg.receivers)]
        )
        for corpus, path in corpora.items():
            files = corpus_files(path)
            size = sum(os.path.getsize(f) for f in files)
            for k in cfg.parallel:
                for name in names:
                    if name == PROBE:
                        sizes = [os.path.getsize(f) for f in files]
                        wall = probe(sizes, cfg.work / PROBE, parallel=k)
                        record(store_record(name, corpus, k, rep, files, size, wall, len(files), 0))
                        print(f"{corpus:6} k={k} {name:10} {len(files) / wall:7.1f} files/s")
                        continue
                    try:
                        wall, stored, peak = run_case(cfg, name, template, files, k)
                    except RuntimeError as exc:  # twice: recorded, and the run goes on
                        print(f"{corpus:6} k={k} {name:10} FAILED: {exc}", flush=True)
                        record({"phase": "store-failed", "receiver": name, "corpus": corpus,
                                "k": k, "rep": rep, "error": str(exc)[-300:]})  # fmt: skip
                        continue
                    rec = store_record(name, corpus, k, rep, files, size, wall, stored, peak)
                    record(rec)
                    print(
                        f"{corpus:6} k={k} {name:10} {rec['files_per_s']:7.1f} files/s "
                        f"{rec['mb_per_s']:7.1f} MB/s stored {stored}/{len(files)} "
                        f"peak {peak:.0f} MB",
                        flush=True,
                    )


def phase_latency(cfg, corpora, template, record) -> None:
    """IO images sent one by one while the panoramics and the CBCT stream in; a worker runs.

    Latency per IO image: from its row's commit (just before the C-STORE response) to the
    instance being PROCESSED, i.e. preview stored, patient matched and appointment linked
    in the same transaction.
    """
    dental = corpus_files(corpora["dental"])
    intraoral = [f for f in dental if Path(f).name.startswith("IO")][: cfg.latency_images]
    background = [f for f in dental if Path(f).name.startswith("PX")] + corpus_files(
        corpora["cbct"]
    )
    rx = Receiver("nexrel", cfg.work, template)
    env = {**os.environ, **nexrel_env(rx.work), "Q_WORKERS": str(cfg.workers)}
    worker_log = open(rx.work / "worker.log", "wb")
    worker = subprocess.Popen(
        [PY, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=worker_log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(2)
        bulk = subprocess.Popen(
            ["storescu", "-aet", "PLANMECA", "-aec", rx.aec, "127.0.0.1", str(rx.port)]
            + background,
            env={**os.environ, **NODELAY}, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for path in intraoral:
            send(rx.port, rx.aec, [path], 1)
            time.sleep(cfg.latency_interval)
        bulk.wait()
        total = len(background) + len(intraoral)
        db_path = rx.work / "nexrel.sqlite3"
        deadline = time.monotonic() + cfg.latency_timeout
        done = 0
        while time.monotonic() < deadline:
            with sqlite3.connect(db_path) as db:
                done = db.execute(
                    "select count(*) from dicomnet_dicominstance where state='PROCESSED'"
                ).fetchone()[0]
            if done >= total:
                break
            time.sleep(1)
        with sqlite3.connect(db_path) as db:
            rows = db.execute(
                "select i.calling_ae, i.received_at, i.processed_at, s.linked_patient_id"
                " from dicomnet_dicominstance i left join dicomnet_dicomstudy s"
                " on s.id = i.study_id where i.state='PROCESSED'"
            ).fetchall()
    finally:
        supervisor.stop(worker, group=True)  # qcluster can hang on SIGTERM (django-q2 #346)
        worker_log.close()
        rx.stop()

    def seconds(row) -> float:
        parse = dt.datetime.fromisoformat
        return (parse(row[2]) - parse(row[1])).total_seconds()

    io_rows = [r for r in rows if r[0] == CALLING_AE]
    bulk_rows = [r for r in rows if r[0] != CALLING_AE]
    for label, subset in (("intra-oral, one at a time", io_rows), ("PX + CBCT stream", bulk_rows)):
        lat = [seconds(r) for r in subset]
        rec = {
            "phase": "latency", "what": label, "n": len(lat), "processed": done,
            "linked": sum(1 for r in subset if r[3]),
            "p50_s": percentile(lat, 50) if lat else float("nan"),
            "p95_s": percentile(lat, 95) if lat else float("nan"),
            "workers": cfg.workers,
        }  # fmt: skip
        record(rec)
        print(rec, flush=True)


# ------------------------------------------------------------------ report


def report(records: list[dict], header: str) -> str:
    lines = [header, ""]
    store = [r for r in records if r["phase"] == "store"]
    groups: dict[tuple, list[dict]] = {}
    for r in store:
        groups.setdefault((r["corpus"], r["k"], r["receiver"]), []).append(r)
    med = {key: statistics.median(r["files_per_s"] for r in rs) for key, rs in groups.items()}
    lines += [
        "| corpus | associations | receiver | runs | files/s | MB/s | × DCMTK storescp "
        "| × fsync probe | ÷ 1 association | stored | peak RSS MB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def over(value: float, ref: float | None) -> str:
        return f"{value / ref:.2f}" if ref else "-"

    for (corpus, k, name), rs in sorted(groups.items()):
        files_s = med[(corpus, k, name)]
        ref, ceiling = med.get((corpus, k, "dcmtk")), med.get((corpus, k, PROBE))
        single = med.get((corpus, 1, name)) if k != 1 else None
        lines.append(
            f"| {corpus} | {k} | {name} | {len(rs)} | {files_s:.1f} | "
            f"{statistics.median(r['mb_per_s'] for r in rs):.1f} | {over(files_s, ref)} | "
            f"{over(files_s, ceiling)} | {over(files_s, single)} | "
            f"{min(r['stored'] for r in rs)}/{rs[0]['files']} | "
            f"{max(r['peak_rss_mb'] for r in rs):.0f} |"
        )
    # Per repetition: each receiver over the storescp and the probe of the same repetition.
    reps: dict[tuple, dict[str, float]] = {}
    for r in store:
        reps.setdefault((r["corpus"], r["k"], r["rep"]), {})[r["receiver"]] = r["files_per_s"]
    lines += [
        "",
        "Durable ceiling (fsync probe ÷ storescp) and each receiver's ratio to storescp, per "
        "repetition:",
        "",
    ]
    for (corpus, k, rep), by_name in sorted(reps.items()):
        ref = by_name.get("dcmtk")
        parts = [f"{n} {over(v, ref)}" for n, v in sorted(by_name.items()) if n != "dcmtk"]
        lines.append(f"- {corpus} k={k} rep {rep}: " + ", ".join(parts))
    latency = [r for r in records if r["phase"] == "latency"]
    if latency:
        lines += [
            "",
            "| latency: C-STORE ack → preview stored and linked "
            "| images | linked | p50 s | p95 s |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['what']} ({r['workers']} workers) | {r['n']} | {r['linked']} | "
            f"{r['p50_s']:.2f} | {r['p95_s']:.2f} |"
            for r in latency
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--receivers", default=f"dcmtk,{PROBE},pynetdicom,orthanc,nexrel,nexrel-2p")
    ap.add_argument("--corpora", default="dental,cbct")
    ap.add_argument("--parallel", default="1,4", help="associations per case")
    ap.add_argument("--phases", default="store,latency")
    ap.add_argument("--latency-images", type=int, default=20)
    ap.add_argument("--latency-interval", type=float, default=0.5)
    ap.add_argument("--latency-timeout", type=float, default=300)
    ap.add_argument("--workers", type=int, default=2, help="django-q2 workers (latency phase)")
    ap.add_argument("--work", default="/tmp/nexrel-bench", help="scratch directory")
    ap.add_argument(
        "--before", type=Path, default=None, help="another tree, for the nexrel-before receivers"
    )
    cfg = ap.parse_args(argv)
    cfg.receivers = cfg.receivers.split(",")
    cfg.parallel = [int(k) for k in cfg.parallel.split(",")]
    cfg.work = Path(cfg.work)
    cfg.work.mkdir(parents=True, exist_ok=True)
    all_corpora = ensure_corpus()
    corpora = {name: all_corpora[name] for name in cfg.corpora.split(",")}
    template = make_nexrel_template(cfg.work, all_corpora["dental"])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / stamp
    out.mkdir(parents=True)
    jsonl = out / "results.jsonl"
    records: list[dict] = []

    def record(rec: dict) -> None:
        records.append(rec)
        with open(jsonl, "a") as fh:
            fh.write(json.dumps(rec) + "\n")

    phases = cfg.phases.split(",")
    if "store" in phases:
        phase_store(cfg, corpora, template, record)
    if "latency" in phases:
        phase_latency(cfg, all_corpora, template, record)
    command = " ".join(["bench/run_bench.py", *(argv or sys.argv[1:])])
    dcmtk = subprocess.run(["storescp", "--version"], capture_output=True, text=True).stdout
    header = (
        f"# Nexrel bench {stamp}\n\n`{command}` on {platform.node()}: {os.cpu_count()} CPUs, "
        f"{platform.platform()}, {dcmtk.splitlines()[0]}"
    )
    text = report(records, header)
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
