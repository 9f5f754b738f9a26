#!/usr/bin/env python3
"""`make bench`: MWL C-FIND latency, Nexrel against DCMTK wlmscpfs and Orthanc's worklist plugin.

One scratch SQLite database (migrate + seed_demo) gets --items worklist items spread over
--days days around today on the four demo stations (bulk_create, so patient_name_key is
computed here). The same items, as Nexrel answers them, are written as .wl files for:

  wlmscpfs  DCMTK wlmscpfs (the reference: ratios are to it), -csk (UTF-8 as in the files)
  orthanc   Orthanc from Debian with its ModalityWorklists plugin
  nexrel    `manage.py dicom_listener`, 1 process; every query is recorded and its items
            marked fetched (one transaction, fsync'd) before the final response

The client is a pynetdicom SCU (TCP_NODELAY) in this process: the same one-station day
query (station CARESTREAM, today, the usual return keys), many times per association, timed
from the C-FIND request to the final response ("first query" is the first one of a fresh
server: Nexrel's encoded-answer cache is cold). Each server answers --warmup queries first,
then --queries (fewer if --budget seconds run out); servers alternate over --reps rounds.
All three must return the same accession numbers.

Results: bench/results/<stamp>-mwl/results.json and summary.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from run_bench import free_port, wait_port  # noqa: E402
from stats import percentile  # noqa: E402

from nexrel import supervisor  # noqa: E402

PY = sys.executable
NODELAY = {"TCP_NODELAY": "1"}  # DCMTK (and Orthanc, built on it) read this
STATION = "CARESTREAM"
WL_AET = "WLMSCPFS"
ORTHANC_PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")
MWL_FIND = "1.2.840.10008.5.1.4.31"


# ------------------------------------------------------------------ data


def nexrel_env(work: Path) -> dict[str, str]:
    return {
        "NEXREL_DATA_DIR": str(work / "data"),
        "DATABASE_URL": f"sqlite:///{work / 'nexrel.sqlite3'}",
        "NEXREL_S3_BUCKET": "",
        "LOG_LEVEL": "WARNING",
        "DICOM_LISTENER_PROCESSES": "1",
    }


def make_database(work: Path, items: int, days: int) -> tuple[int, str]:
    """Migrate, seed the demo, add ``items`` items; return (items in the DB, today)."""
    env = {**os.environ, **nexrel_env(work)}
    for command in (["migrate", "-v0"], ["seed_demo", "--no-images"]):
        subprocess.run([PY, "manage.py", *command], cwd=ROOT, env=env, check=True)
    os.environ.update(nexrel_env(work))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexrel.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.utils import timezone
    from pydicom.uid import generate_uid

    from patients.models import Patient, Practice
    from patients.names import normalise_name
    from worklist.models import WorklistItem

    practice = Practice.objects.order_by("pk").first()
    patients = list(Patient.objects.filter(practice=practice))
    stations = ["CARESTREAM", "PLANMECA", "SIRONA", "VATECH"]
    today = timezone.localdate()
    first_day = today - dt.timedelta(days=days // 2)
    per_day = -(-items // days)
    rows = []
    for n in range(items):
        day = first_day + dt.timedelta(days=n // per_day)
        slot = n % per_day
        start = dt.datetime.combine(day, dt.time(7, 0)) + dt.timedelta(minutes=12 * slot)
        patient = patients[n % len(patients)]
        name = f"{patient.family_name}^{patient.given_name}"
        rows.append(
            WorklistItem(
                practice=practice,
                patient=patient,
                accession_number=f"B{n:09d}",
                requested_procedure_id=f"BRP{n:09d}",
                scheduled_procedure_step_id=f"BSPS{n:09d}",
                study_instance_uid=generate_uid(),
                modality=("IO", "PX", "CT")[n % 3],
                scheduled_station_ae_title=stations[slot % len(stations)],
                scheduled_start=timezone.make_aware(start),
                step_description="Bitewings - four radiographic images",
                requested_procedure_code="D0274",
                performing_physician="Gauthier^Marie",
                patient_name=name,
                patient_name_key=normalise_name(name),  # bulk_create skips save()
                patient_id=patient.chart_number,
                patient_birth_date=patient.birth_date,
                patient_sex=patient.sex,
                status="SCHEDULED" if day >= today else "COMPLETED",
            )
        )
    WorklistItem.objects.bulk_create(rows, batch_size=1000)
    return WorklistItem.objects.count(), today.strftime("%Y%m%d")


def write_worklist_files(directory: Path) -> int:
    """Every item (any status) as a .wl file, as Nexrel answers it (UTF-8), plus the lockfile
    wlmscpfs wants."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from worklist.models import WorklistItem
    from worklist.mwl_responses import item_dataset

    directory.mkdir(parents=True)
    (directory / "lockfile").touch()
    count = 0
    for item in WorklistItem.objects.iterator():
        ds = item_dataset(item, character_set="ISO_IR 192")
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = MWL_FIND
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(directory / f"{item.accession_number}.wl", enforce_file_format=True)
        count += 1
    return count


# ------------------------------------------------------------------ servers


class Server:
    def __init__(self, name: str, work: Path, wl_dir: Path):
        self.name, self.work = name, work / name
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = open(self.work / "server.log", "wb")
        cmd, env, self.aec = self._command(wl_dir)
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT
        )
        wait_port(self.port, timeout=60)
        time.sleep(0.5)  # Orthanc opens its DICOM port before its plugins are ready

    def _command(self, wl_dir: Path) -> tuple[list[str], dict, str]:
        if self.name == "wlmscpfs":
            cmd = ["wlmscpfs", "-csk", "-dfp", str(wl_dir.parent), str(self.port)]
            return cmd, NODELAY, WL_AET
        if self.name == "orthanc":
            plugin = next(
                str(p)
                for d in ORTHANC_PLUGIN_DIRS
                for p in sorted(Path(d).glob("libModalityWorklists.so*"))
            )
            config = {
                "Name": "bench-mwl", "HttpPort": free_port(), "DicomPort": self.port,
                "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
                "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
                "DicomAlwaysAllowFind": True, "DicomAlwaysAllowEcho": True,
                "DicomModalities": {"carestream": [STATION, "127.0.0.1", 104]},
                "StorageDirectory": str(self.work / "db"), "IndexDirectory": str(self.work / "db"),
                "Plugins": [plugin], "Worklists": {"Enable": True, "Database": str(wl_dir)},
                "DefaultEncoding": "Utf8", "SaveJobs": False,
            }  # fmt: skip
            (self.work / "orthanc.json").write_text(json.dumps(config))
            return ["Orthanc", str(self.work / "orthanc.json")], NODELAY, "ORTHANC"
        cmd = [PY, "manage.py", "dicom_listener", "--port", str(self.port)]
        cmd += ["--address", "127.0.0.1", "--processes", "1", "--no-reconcile"]
        return cmd, nexrel_env(self.work.parent), "NEXREL-CRM"

    def stop(self) -> None:
        supervisor.stop(self.proc, timeout=15)
        self.log.close()


# ------------------------------------------------------------------ client


def day_query(day: str):
    from pydicom import Dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword in (
        "AccessionNumber", "ReferringPhysicianName", "PatientName", "PatientID",
        "PatientBirthDate", "PatientSex", "StudyInstanceUID", "RequestedProcedureID",
        "RequestedProcedureDescription",
    ):  # fmt: skip
        setattr(ds, keyword, "")
    step = Dataset()
    step.ScheduledStationAETitle = STATION
    step.ScheduledProcedureStepStartDate = day
    for keyword in (
        "ScheduledProcedureStepStartTime", "Modality", "ScheduledPerformingPhysicianName",
        "ScheduledProcedureStepDescription", "ScheduledProcedureStepID",
    ):  # fmt: skip
        setattr(step, keyword, "")
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def measure(server: Server, day: str, *, warmup: int, queries: int, budget: float) -> dict:
    from pynetdicom import AE, _config

    # The client must not pretty-print every identifier (pynetdicom does, log on or off).
    _config.LOG_REQUEST_IDENTIFIERS = _config.LOG_RESPONSE_IDENTIFIERS = False
    ae = AE(ae_title=STATION)
    ae.add_requested_context(MWL_FIND)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 120
    assoc = ae.associate("127.0.0.1", server.port, ae_title=server.aec)
    if not assoc.is_established:
        raise RuntimeError(f"{server.name}: association refused (see {server.work}/server.log)")
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    query = day_query(day)
    latencies: list[float] = []
    accessions: set[str] = set()
    deadline = time.monotonic() + budget
    try:
        for n in range(warmup + queries):
            found: list[str] = []
            final = None
            started = time.perf_counter()
            for rsp, identifier in assoc.send_c_find(query, MWL_FIND):
                if rsp is None or "Status" not in rsp:
                    raise RuntimeError(f"{server.name}: no response")
                if rsp.Status in (0xFF00, 0xFF01):
                    found.append(str(identifier.AccessionNumber))
                else:
                    final = rsp.Status
            elapsed = time.perf_counter() - started
            if final != 0x0000:
                raise RuntimeError(f"{server.name}: final status 0x{final:04X}")
            accessions = set(found)
            if n == 0:
                first_ms = elapsed * 1000
            if n >= warmup:
                latencies.append(elapsed * 1000)
                if time.monotonic() > deadline and len(latencies) >= 20:
                    break
    finally:
        assoc.release()
    return {
        "server": server.name,
        "first_ms": first_ms,
        "latencies_ms": latencies,
        "accessions": sorted(accessions),
    }


def summarise(runs: list[dict]) -> dict[str, dict]:
    by_server: dict[str, dict] = {}
    for run in runs:
        entry = by_server.setdefault(
            run["server"], {"latencies_ms": [], "items": None, "first_ms": []}
        )
        entry["latencies_ms"] += run["latencies_ms"]
        entry["first_ms"].append(run["first_ms"])
        entry["items"] = len(run["accessions"])
    for entry in by_server.values():
        lat = entry["latencies_ms"]
        entry.update(
            queries=len(lat),
            p50_ms=percentile(lat, 50),
            p95_ms=percentile(lat, 95),
            mean_ms=statistics.fmean(lat),
            max_ms=max(lat),
        )
    return by_server


def report(summary: dict[str, dict], header: str) -> str:
    ref = summary.get("wlmscpfs")
    lines = [
        header,
        "",
        "| server | queries | items per answer | p50 ms | p95 ms | mean ms | max ms "
        "| first query ms | p50 × faster than wlmscpfs | p95 × faster |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        fast50 = f"{ref['p50_ms'] / s['p50_ms']:.1f}" if ref else "-"
        fast95 = f"{ref['p95_ms'] / s['p95_ms']:.1f}" if ref else "-"
        lines.append(
            f"| {name} | {s['queries']} | {s['items']} | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} "
            f"| {s['mean_ms']:.2f} | {s['max_ms']:.2f} | {max(s['first_ms']):.1f} "
            f"| {fast50} | {fast95} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=200)
    ap.add_argument("--servers", default="wlmscpfs,orthanc,nexrel")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--queries", type=int, default=200, help="per server and round")
    ap.add_argument("--budget", type=float, default=60, help="seconds per server and round")
    ap.add_argument("--work", default="/tmp/nexrel-bench-mwl", help="scratch directory")
    cfg = ap.parse_args(argv)
    work = Path(cfg.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    total, today = make_database(work, cfg.items, cfg.days)
    wl_dir = work / "worklists" / WL_AET
    files = write_worklist_files(wl_dir)
    print(f"{total} worklist items in the database and as .wl files ({files})", flush=True)

    names = cfg.servers.split(",")
    runs: list[dict] = []
    for rep in range(cfg.reps):
        for name in names if rep % 2 == 0 else list(reversed(names)):
            server = Server(name, work, wl_dir)
            try:
                run = measure(
                    server, today, warmup=cfg.warmup, queries=cfg.queries, budget=cfg.budget
                )
            finally:
                server.stop()
            runs.append(run)
            lat = run["latencies_ms"]
            print(
                f"round {rep + 1} {name}: {len(lat)} queries, {len(run['accessions'])} items, "
                f"p50 {percentile(lat, 50):.2f} ms, p95 {percentile(lat, 95):.2f} ms",
                flush=True,
            )
    answers = {tuple(r["accessions"]) for r in runs}
    if len(answers) != 1:
        raise SystemExit(f"servers disagree on the answer: {sorted(map(len, answers))} items")

    summary = summarise(runs)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = HERE / "results" / f"{stamp}-mwl"
    out.mkdir(parents=True)
    command = " ".join(["bench/bench_mwl.py", *(argv if argv is not None else sys.argv[1:])])
    dcmtk = subprocess.run(["wlmscpfs", "--version"], capture_output=True, text=True).stdout
    orthanc = subprocess.run(["Orthanc", "--version"], capture_output=True, text=True).stdout
    header = (
        f"# Nexrel MWL bench {stamp}\n\n`{command}` on {platform.node()}: {os.cpu_count()} CPUs, "
        f"{platform.platform()}, Python {platform.python_version()}; "
        f"{dcmtk.splitlines()[0] if dcmtk else 'DCMTK ?'}; "
        f"{orthanc.splitlines()[0] if orthanc else 'Orthanc ?'}.\n"
        f"{total} items in the database and as .wl files ({files}); query: station "
        f"{STATION}, date {today}, {cfg.reps} rounds."
    )
    text = report(summary, header)
    (out / "summary.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=1))
    print(text)
    print(f"results in {out}")


if __name__ == "__main__":
    main()
