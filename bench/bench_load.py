#!/usr/bin/env python3
"""Load test (issue 11): many devices sending at once to the production shape, on loopback.

PostgreSQL 15 (a throwaway cluster, fsync on), the listener with its default processes and
limits, one `qcluster` with 2 workers, local storage. A load generator runs --associations
concurrent senders (pynetdicom, in --client-processes processes so the client is not
GIL-bound) for --seconds. Each sender loops: associate as a registered device, send one
study of --images intra-oral images (fresh UIDs, patient 1001 Zoé Côté, who has an imaging
appointment today, so every study links), release. An A-ASSOCIATE-RJ is counted and the
sender retries after a second, as devices do.

Reported: files/s and MB/s acknowledged; p50/p95 C-STORE round trip; rejects and failed
stores; then, once the workers have drained the queue, p50/p95 time from the row's commit
to a linked preview (received_at → processed_at) and the drain time; and the check that
nothing acknowledged is lost: every acknowledged SOP Instance UID has exactly one row,
PROCESSED, with a preview, in a study linked to the appointment.

Usage: bench_load.py [--associations 50] [--seconds 60] [--images 10] [--work DIR]
Results: bench/results/load-<stamp>/results.json and summary.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pydicom
from pydicom.uid import generate_uid
from pynetdicom import AE

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_qr import Listener, Postgres, manage, nexrel_env, prepare_nexrel  # noqa: E402
from run_bench import PY, ROOT  # noqa: E402
from stats import percentile  # noqa: E402

from nexrel import supervisor  # noqa: E402

DEVICES = ("CARESTREAM", "PLANMECA")  # registered devices of the demo practice
PATIENT_ID, PATIENT_NAME = "1001", "Côté^Zoé"  # imaging appointment today (seed_demo)


def base_image() -> Path:
    """The first intra-oral image of the dental corpus (1600×1200, 16-bit, 3.8 MB)."""
    return sorted((HERE / "corpus" / "dental").rglob("IO_*.dcm"))[0]


def _sender(
    args: tuple[str, int, int, float, int, int],
) -> dict:
    """One client process: `threads` senders until `deadline` (a wall-clock time)."""
    path, port, threads, deadline, images, index = args
    today = dt.date.today().strftime("%Y%m%d")
    out: dict = {"acks": [], "rtt": [], "rejects": 0, "failed": 0, "aborts": 0}
    lock = threading.Lock()

    def run(thread: int) -> None:
        ds = pydicom.dcmread(path)  # each sender its own: a copy() would share elements
        ds.PatientID, ds.PatientName, ds.StudyDate = PATIENT_ID, PATIENT_NAME, today
        ae = AE(ae_title=DEVICES[(index + thread) % len(DEVICES)])
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 60
        while time.time() < deadline:
            assoc = ae.associate("127.0.0.1", port, ae_title="NEXREL-CRM")
            if not assoc.is_established:
                with lock:
                    out["rejects"] += 1
                time.sleep(1)
                continue
            ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
            for n in range(images):
                uid = generate_uid()
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
                ds.InstanceNumber = n + 1
                start = time.perf_counter()
                status = assoc.send_c_store(ds)
                rtt = time.perf_counter() - start
                with lock:
                    if status and status.Status == 0x0000:
                        out["acks"].append(uid)
                        out["rtt"].append(rtt)
                    else:
                        out["failed"] += 1
                if not assoc.is_established:
                    with lock:
                        out["aborts"] += 1
                    break
            if assoc.is_established:
                assoc.release()

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return out


def generate_load(port: int, cfg) -> tuple[dict, float]:
    per_process = [cfg.associations // cfg.client_processes] * cfg.client_processes
    for i in range(cfg.associations % cfg.client_processes):
        per_process[i] += 1
    deadline = time.time() + cfg.seconds
    jobs = [
        (str(base_image()), port, n, deadline, cfg.images, i) for i, n in enumerate(per_process)
    ]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(cfg.client_processes) as pool:
        parts = pool.map(_sender, jobs)
    wall = time.perf_counter() - start
    merged: dict = {"acks": [], "rtt": [], "rejects": 0, "failed": 0, "aborts": 0}
    for part in parts:
        for key, value in part.items():
            merged[key] = merged[key] + value
    return merged, wall


def wait_drained(url: str, expected: int, timeout: float) -> float:
    """Seconds until `expected` instances are PROCESSED (or the timeout)."""
    start = time.monotonic()
    with psycopg.connect(url, autocommit=True) as db:
        while time.monotonic() - start < timeout:
            done = db.execute(
                "select count(*) from dicomnet_dicominstance where state = 'PROCESSED'"
            ).fetchone()[0]
            if done >= expected:
                break
            time.sleep(1)
    return time.monotonic() - start


def audit_outcome(url: str, acks: list[str]) -> dict:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "select i.sop_instance_uid, i.state, i.preview_key <> '', s.appointment_id,"
            " extract(epoch from i.processed_at - i.received_at)"
            " from dicomnet_dicominstance i left join dicomnet_dicomstudy s on s.id = i.study_id"
        ).fetchall()
    by_uid: dict[str, list[tuple]] = {}
    for row in rows:
        by_uid.setdefault(row[0], []).append(row)
    acked = set(acks)
    held = [r for uid in acked for r in by_uid.get(uid, [])]  # the acknowledged ones' rows
    latencies = [float(r[4]) for r in held if r[4] is not None]
    return {
        "rows": len(rows),
        "acked_unique": len(acked),
        "acked_without_row": sum(1 for uid in acked if uid not in by_uid),
        "duplicated": sum(1 for uid in acked if len(by_uid.get(uid, [])) > 1),
        "not_processed": sum(1 for r in held if r[1] != "PROCESSED"),
        "without_preview": sum(1 for r in held if not r[2]),
        "unlinked": sum(1 for r in held if r[3] is None),
        "preview_p50_s": percentile(latencies, 50) if latencies else float("nan"),
        "preview_p95_s": percentile(latencies, 95) if latencies else float("nan"),
    }


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        "?",
    )
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} vCPUs ({cpu}), Linux {platform.release()}, Python "
        f"{platform.python_version()}, load average {load[0]:.2f} at the start"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--associations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--images", type=int, default=10, help="images per association")
    parser.add_argument("--client-processes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument("--work", type=Path)
    cfg = parser.parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = cfg.work or Path("/tmp") / f"nexrel-load-{stamp}"
    results = HERE / "results" / f"load-{stamp}"
    results.mkdir(parents=True)
    header = machine()
    print(header, flush=True)

    pg = Postgres(work / "pg", durable=True)
    env = {**nexrel_env(work / "data", pg.url), "Q_WORKERS": str(cfg.workers)}
    listener = worker = None
    try:
        prepare_nexrel(env, 0)
        listener = Listener(env, work / "listener.log", processes=None)
        worker_log = open(work / "worker.log", "wb")
        worker = subprocess.Popen(
            [PY, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=worker_log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        load, wall = generate_load(listener.port, cfg)
        acked = len(load["acks"])
        drain = wait_drained(pg.url, acked, cfg.drain_timeout)
        outcome = audit_outcome(pg.url, load["acks"])
        settings = manage(
            env, "shell", "-c",
            "from django.conf import settings as s; print(s.DICOM_LISTENER_PROCESSES,"
            " s.DICOM_MAX_ASSOCIATIONS)",
        ).split()[-2:]  # fmt: skip
    finally:
        if worker:
            supervisor.stop(worker, group=True)  # qcluster can hang on SIGTERM
        if listener:
            listener.stop()
        pg.stop()
    size_mb = base_image().stat().st_size / 1e6
    record = {
        "machine": header,
        "associations": cfg.associations,
        "seconds": round(wall, 1),
        "images_per_association": cfg.images,
        "listener_processes": int(settings[0]),
        "max_associations_per_process": int(settings[1]),
        "workers": cfg.workers,
        "acked": acked,
        "files_per_s": round(acked / wall, 1),
        "mb_per_s": round(acked * size_mb / wall, 1),
        "store_rtt_p50_ms": round(percentile(load["rtt"], 50) * 1000, 1),
        "store_rtt_p95_ms": round(percentile(load["rtt"], 95) * 1000, 1),
        "rejects": load["rejects"],
        "failed_stores": load["failed"],
        "aborted_associations": load["aborts"],
        "drain_s": round(drain, 1),
        "processed_per_s_overall": round(acked / (wall + drain), 1),
        **outcome,
    }
    (results / "results.json").write_text(json.dumps(record, indent=2))
    lines = [f"# Load test, {stamp}", "", header, "", "| figure | value |", "|---|---:|"]
    lines += [f"| {key} | {value} |" for key, value in record.items() if key != "machine"]
    (results / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    lost = outcome["acked_without_row"] + outcome["not_processed"] + outcome["duplicated"]
    if not cfg.work:
        shutil.rmtree(work, ignore_errors=True)
    if lost:
        sys.exit(f"LOST OR DUPLICATED: {lost}")


if __name__ == "__main__":
    main()
