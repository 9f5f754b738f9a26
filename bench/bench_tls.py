#!/usr/bin/env python3
"""What DICOM TLS costs: C-STORE throughput with and without TLS, DCMTK and Nexrel.

The same small corpus, sent by DCMTK `storescu` over one association, into:

  dcmtk        DCMTK storescp (plain), the reference
  dcmtk-tls    DCMTK storescp +tls (its default BCP 195 non-downgrading profile, client
               certificate required); storescu +tls
  nexrel       `manage.py dicom_listener`, durability on, SQLite, one process
  nexrel-tls   the same listener's TLS port (DICOM_TLS_*: BCP 195, mutual TLS)

Certificates from `dicomnet/net/tls_dev.py` (RSA 2048, as `make run`'s). Receivers alternate
over --reps repetitions, each started fresh on empty storage; the report gives medians and
each TLS receiver's ratio to its own plain one. Results: bench/results/<stamp>-tls/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from run_bench import (  # noqa: E402
    CALLING_AE,
    NODELAY,
    PY,
    corpus_files,
    free_port,
    make_nexrel_template,
    nexrel_env,
    wait_port,
)

from dicomnet.net.tls_dev import issue, new_authority  # noqa: E402
from nexrel import supervisor  # noqa: E402

RECEIVERS = ("dcmtk", "dcmtk-tls", "nexrel", "nexrel-tls")


def make_pki(directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    ca = new_authority("Bench CA")
    ca.write(directory / "ca.crt", directory / "ca.key")
    issue(ca, "receiver", hosts=["localhost", "127.0.0.1"]).write(
        directory / "server.crt", directory / "server.key"
    )
    issue(ca, "storescu").write(directory / "client.crt", directory / "client.key")
    return {name: str(directory / f"{name}") for name in (
        "ca.crt", "server.crt", "server.key", "client.crt", "client.key"
    )}  # fmt: skip


def start(name: str, work: Path, template: Path, pki: dict[str, str]):
    """The receiver ``name``, fresh; (process, port to send to, called AE, work dir)."""
    rx = work / name
    shutil.rmtree(rx, ignore_errors=True)
    (rx / "out").mkdir(parents=True)
    port = free_port()
    log = open(rx / "receiver.log", "wb")
    if name.startswith("dcmtk"):
        tls = ["+tls", pki["server.key"], pki["server.crt"], "+cf", pki["ca.crt"]]
        argv = ["storescp", "--fork", "-od", str(rx / "out"), "-aet", "STORESCP"]
        argv += (tls if name == "dcmtk-tls" else []) + [str(port)]
        env, send_port, aec = NODELAY, port, "STORESCP"
    else:
        shutil.copy(template / "nexrel.sqlite3", rx / "nexrel.sqlite3")
        argv = [PY, "manage.py", "dicom_listener", "--port", str(port)]
        argv += ["--address", "127.0.0.1", "--processes", "1"]
        env, send_port, aec = nexrel_env(rx), port, "NEXREL-CRM"
        if name == "nexrel-tls":
            send_port = free_port()
            argv += ["--tls-port", str(send_port)]
            env = {
                **env,
                "DICOM_TLS_CERT": pki["server.crt"],
                "DICOM_TLS_KEY": pki["server.key"],
                "DICOM_TLS_CA": pki["ca.crt"],
            }
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    wait_port(send_port)
    return proc, log, send_port, aec, rx


def send(name: str, port: int, aec: str, files: list[str], pki: dict[str, str]) -> float:
    tls = ["+tls", pki["client.key"], pki["client.crt"], "+cf", pki["ca.crt"]]
    argv = ["storescu", "-aet", CALLING_AE, "-aec", aec]
    argv += (tls if name.endswith("-tls") else []) + ["localhost", str(port), *files]
    started = time.perf_counter()
    done = subprocess.run(argv, env={**os.environ, **NODELAY}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{name}: storescu failed: {done.stderr[-800:]}")
    return wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--intraoral", type=int, default=40, help="images in the corpus")
    ap.add_argument("--work", default="/tmp/nexrel-bench-tls", help="scratch directory")
    cfg = ap.parse_args(argv)
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"corpus-io{cfg.intraoral}"
    if not corpus.is_dir():
        subprocess.run(
            [PY, str(HERE / "vendor" / "make_corpus.py"), "dental", "--out", str(corpus)]
            + ["--intraoral", str(cfg.intraoral), "--panoramic", "0"],
            check=True,
        )
    files = corpus_files(corpus)
    size = sum(os.path.getsize(f) for f in files)
    pki = make_pki(work / "pki")
    template = make_nexrel_template(work, corpus)
    out = HERE / "results" / (time.strftime("%Y%m%d-%H%M%S") + "-tls")
    out.mkdir(parents=True)
    records = []
    for rep in range(cfg.reps):
        order = RECEIVERS[rep % 4 :] + RECEIVERS[: rep % 4]
        for name in order:
            proc, log, port, aec, rx = start(name, work, template, pki)
            try:
                wall = send(name, port, aec, files, pki)
            finally:
                supervisor.stop(proc, timeout=20)
                log.close()
                shutil.rmtree(rx, ignore_errors=True)
            rec = {"receiver": name, "rep": rep, "files": len(files), "bytes": size,
                   "wall_s": wall, "files_per_s": len(files) / wall,
                   "mb_per_s": size / wall / 1e6}  # fmt: skip
            records.append(rec)
            with open(out / "results.jsonl", "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            print(f"rep {rep} {name:10} {rec['files_per_s']:6.1f} files/s "
                  f"{rec['mb_per_s']:6.1f} MB/s", flush=True)  # fmt: skip
    median = {
        name: statistics.median(r["files_per_s"] for r in records if r["receiver"] == name)
        for name in RECEIVERS
    }
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    lines = [
        f"`bench/bench_tls.py {' '.join(argv or sys.argv[1:])}` on {os.cpu_count()} CPUs "
        f"({cpu}), {platform.platform()}; {len(files)} files, {size / 1e6:.0f} MB; "
        f"medians of {cfg.reps}",
        "",
        "| receiver | files/s | MB/s | TLS / plain |",
        "|---|---:|---:|---:|",
    ]
    for name in RECEIVERS:
        plain = median[name.removesuffix("-tls")]
        ratio = f"{median[name] / plain:.2f}" if name.endswith("-tls") else ""
        lines.append(
            f"| {name} | {median[name]:.1f} | {median[name] * size / len(files) / 1e6:.1f} "
            f"| {ratio} |"
        )
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
