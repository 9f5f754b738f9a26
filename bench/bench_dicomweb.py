"""DICOMweb benchmark (issue 8): Nexrel's /dicomweb/ against Orthanc's DICOMweb plugin.

qido  QIDO-RS latency, GET studies?..., p50/p95 per query, against N studies (default
      100,000): the studies of bench_qr.py (same corpus, same loading: Orthanc gets the
      one-image files through POST /instances, Nexrel bulk_created rows), Nexrel on SQLite and
      on PostgreSQL 15 (throwaway cluster), Orthanc (SQLite index) with its DICOMweb plugin.
      One keep-alive HTTP client per server (requests), each query timed from sending the
      request to the last byte of the answer (JSON decoding excluded), after warm-up queries.
stow  STOW-RS throughput, files/s and MB/s: the dental corpus (50 studies, one POST per study)
      and the 300-slice CBCT (one POST), sent one request at a time to a fresh Orthanc
      (SyncStorageArea on) and a fresh Nexrel web server; and the same files with DCMTK
      storescu (1 association) into a fresh Nexrel listener and a fresh Orthanc, for
      comparison. Nexrel's STOW answer comes once every object is durable (spooled, fsynced,
      row committed); processing (previews, matching) is a django-q2 task afterwards, and no
      worker runs during this phase.
wado  WADO-RS study retrieval, MB/s: the CBCT study and one dental study (intra-oral and
      panoramic series), as multipart/related; type="application/dicom", from a fresh Orthanc
      and a fresh Nexrel that were given the same files by STOW-RS (Nexrel's then processed
      by running the pipeline, untimed: WADO-RS serves processed instances only). Repetitions
      alternate servers; medians.

Nexrel's web server is `manage.py runserver --noreload` (the project ships no other WSGI
server: `make run`'s supervisor runs the same), DEBUG off, authenticated with a bearer token
(`manage.py api_token create`). Orthanc runs with HTTP compression off, the client asks for
`Accept-Encoding: identity` everywhere.

Usage: bench_dicomweb.py [--phases qido,stow,wado] [--studies 100000] [--reps 30]
                         [--stow-reps 3] [--wado-reps 5] [--no-postgres] [--keep-orthanc]
Results: bench/results/dicomweb-<stamp>/results.json and summary.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pydicom
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_qr import (  # noqa: E402
    Listener,
    Orthanc,
    Postgres,
    ensure_qr_corpus,
    manage,
    nexrel_env,
    prepare_nexrel,
)
from run_bench import NODELAY, PY, ROOT, ensure_corpus, free_port, wait_port  # noqa: E402
from stats import percentile  # noqa: E402

from nexrel import supervisor  # noqa: E402

HERE = ROOT / "bench"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
DICOM_JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
DEMO_USER = "clinician"  # seed_demo's user of the demo practice
# (label, query string): matches with bench_qr.py's 100,000 studies in brackets
QUERIES = [
    ("exact name", "PatientName=Tremblay01%5EJean"),  # "Tremblay01^Jean", 1 patient: 50
    ("name prefix", "PatientName=Tremblay01*"),  # 1 patient: 50 (bench_qr.py's first pattern)
    ("accented prefix", "PatientName=L%C3%A9vesque07*"),  # "Lévesque07*", stored "Levesque07^…": 50
    ("prefix cot*, limit 100", "PatientName=cot*&limit=100"),  # 100 patients: 5,000, 100 answered
    ("PatientID", "PatientID=QR00042"),  # 1 patient: 50
    ("StudyDate range", "StudyDate=20150101-20150107"),  # 7 days: 140
]
ORTHANC_DICOMWEB = {
    "Plugins": [PLUGIN],
    "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                 "Host": "127.0.0.1", "Ssl": False},
    "HttpCompressionEnabled": False, "KeepAlive": True,
}  # fmt: skip


# ------------------------------------------------------------------ servers


class NexrelWeb:
    """``manage.py runserver`` on a free port, for the data dir and database of ``env``."""

    def __init__(self, env: dict, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/dicomweb"
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(
            [PY, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT, env={**env, "DEBUG": "false"}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_port(self.port, 120)

    def stop(self) -> None:
        supervisor.stop(self.proc, timeout=20, group=True)
        self.log.close()


def orthanc_dicomweb(work: Path, *, sync: bool) -> Orthanc:
    return Orthanc(work, options={**ORTHANC_DICOMWEB, "SyncStorageArea": sync})


def client(token: str | None = None) -> requests.Session:
    s = requests.Session()
    s.headers["Accept-Encoding"] = "identity"
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def create_token(env: dict) -> str:
    return manage(env, "api_token", "create", "--user", DEMO_USER).strip().splitlines()[-1]


# ------------------------------------------------------------------ QIDO-RS


MODES = ("keep-alive", "new connection")


def qido_latency(new_session, base: str, reps: int, warmup: int = 3) -> dict:
    """p50/p95 per query, over one keep-alive connection, then a new connection per query.

    runserver (wsgiref) leaves Nagle's algorithm on and writes the headers and the body in
    separate sends, so on a reused connection a small answer waits for the client's delayed
    ACK (~40 ms); a new connection per query does not meet it. Both are measured."""
    results: dict[str, dict] = {}
    for mode in MODES:
        session = new_session()
        for label, query in QUERIES:
            url = f"{base}/studies?{query}"
            times, matches = [], -1
            for k in range(warmup + reps):
                if mode == "new connection":
                    session.close()
                start = time.perf_counter()
                r = session.get(url, headers={"Accept": DICOM_JSON})
                body = r.content
                elapsed = time.perf_counter() - start
                if r.status_code not in (200, 204):
                    raise RuntimeError(f"QIDO {url}: {r.status_code} {body[:300]!r}")
                if k >= warmup:
                    times.append(elapsed * 1000)
                matches = len(json.loads(body)) if r.status_code == 200 else 0
            row = results.setdefault(mode, {})[label] = {
                "query": query, "matches": matches, "n": len(times),
                "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
                "mean_ms": statistics.mean(times), "bytes": len(body),
            }  # fmt: skip
            print(f"  {base.split('/')[-1]:10} {mode:14} {label:24} {matches:4} answers  p50 "
                  f"{row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms", flush=True)  # fmt: skip
    return results


def phase_qido(cfg, work: Path, record: dict) -> None:
    corpus = ensure_qr_corpus(cfg.studies)
    files = sorted(corpus.glob("*.dcm"))[: cfg.studies]
    out = record.setdefault("qido", {})
    # Orthanc: the storage is kept between runs with --keep-orthanc (loading takes minutes)
    orthanc = orthanc_dicomweb(work / "orthanc-qido", sync=False)
    try:
        have = orthanc.get("/statistics")["CountStudies"]
        if have < len(files):
            start = time.perf_counter()
            orthanc.load(files[max(0, have - 100) :])  # resumes a kept storage
            print(f"Orthanc loaded {len(files)} in {time.perf_counter() - start:.0f} s", flush=True)
        out["orthanc_studies"] = orthanc.get("/statistics")["CountStudies"]
        out["Orthanc"] = qido_latency(
            client, f"http://127.0.0.1:{orthanc.http}/dicom-web", cfg.reps
        )
    finally:
        orthanc.stop()
    for backend in ("SQLite",) if cfg.no_postgres else ("SQLite", "PostgreSQL"):
        data = work / f"nexrel-{backend}"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        pg = Postgres(work / "pg") if backend == "PostgreSQL" else None
        try:
            env = nexrel_env(data, pg.url if pg else None)
            start = time.perf_counter()
            prepare_nexrel(env, cfg.studies)
            print(f"Nexrel/{backend} seeded in {time.perf_counter() - start:.0f} s", flush=True)
            web = NexrelWeb(env, data / "web.log")
            try:
                token = create_token(env)
                out[f"Nexrel ({backend})"] = qido_latency(
                    lambda token=token: client(token), web.base, cfg.reps
                )
            finally:
                web.stop()
        finally:
            if pg:
                pg.stop()
            shutil.rmtree(data, ignore_errors=True)


# ------------------------------------------------------------------ STOW-RS


def multipart(files: list[Path]) -> tuple[bytes, str]:
    """A STOW-RS body of ``files`` (built before the clock starts) and its Content-Type."""
    boundary = uuid.uuid4().hex
    chunks = []
    for f in files:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
                   f.read_bytes(), b"\r\n"]  # fmt: skip
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"{MULTIPART_DICOM}; boundary={boundary}"


def corpus_studies() -> dict[str, list[list[Path]]]:
    """Per corpus, its studies, each a list of files (one STOW-RS request each)."""
    paths = ensure_corpus()
    return {
        "dental": [sorted(d.rglob("*.dcm")) for d in sorted(paths["dental"].glob("study*"))],
        "cbct": [sorted(paths["cbct"].rglob("*.dcm"))],
    }


def stow(session: requests.Session, url: str, bodies: list[tuple[bytes, str, int]]) -> float:
    """POST each body in turn; the seconds for all. Fails unless every object is stored."""
    start = time.perf_counter()
    for body, content_type, count in bodies:
        r = session.post(
            url, data=body, headers={"Content-Type": content_type, "Accept": DICOM_JSON}
        )
        if r.status_code != 200:
            raise RuntimeError(f"STOW {url}: {r.status_code} {r.text[:500]}")
        stored = r.json().get("00081199", {}).get("Value", [])
        if len(stored) != count:
            raise RuntimeError(f"STOW {url}: {len(stored)} of {count} stored: {r.text[:500]}")
    return time.perf_counter() - start


def storescu(port: int, aec: str, files: list[Path]) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["storescu", "-aet", "CARESTREAM", "-aec", aec, "127.0.0.1", str(port),
         *map(str, files)],
        check=True, env={**os.environ, **NODELAY}, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - start


def nexrel_template(work: Path) -> tuple[Path, str]:
    """A migrated, seeded SQLite database with a bearer token, copied for each case."""
    template = work / "template"
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    env = nexrel_env(template)
    prepare_nexrel(env, 0)
    return template, create_token(env)


def fresh_nexrel(template: Path, run: Path) -> dict:
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    shutil.copy(template / "nexrel.sqlite3", run / "nexrel.sqlite3")
    return nexrel_env(run)


STOW_CASES = ("Orthanc STOW-RS", "Nexrel STOW-RS", "Nexrel C-STORE", "Orthanc C-STORE")


def stow_case(case: str, work: Path, template: Path, token: str, files: list[Path],
              bodies: list[tuple[bytes, str, int]]) -> float:  # fmt: skip
    run = work / "stow-run"
    if case.startswith("Orthanc"):
        shutil.rmtree(run, ignore_errors=True)
        orthanc = orthanc_dicomweb(run, sync=True)
        try:
            if case.endswith("STOW-RS"):
                url = f"http://127.0.0.1:{orthanc.http}/dicom-web/studies"
                return stow(client(), url, bodies)
            return storescu(orthanc.port, "ORTHANC", files)
        finally:
            orthanc.stop()
            shutil.rmtree(run, ignore_errors=True)
    env = fresh_nexrel(template, run)
    try:
        if case.endswith("STOW-RS"):
            web = NexrelWeb(env, run / "web.log")
            try:
                return stow(client(token), f"{web.base}/studies", bodies)
            finally:
                web.stop()
        listener = Listener(env, run / "listener.log")
        try:
            return storescu(listener.port, "NEXREL-CRM", files)
        finally:
            listener.stop()
    finally:
        shutil.rmtree(run, ignore_errors=True)


def phase_stow(cfg, work: Path, record: dict) -> None:
    studies = corpus_studies()
    template, token = nexrel_template(work)
    out = record.setdefault("stow", {"corpora": {}, "runs": []})
    try:
        for name, groups in studies.items():
            files = [f for group in groups for f in group]
            megabytes = sum(f.stat().st_size for f in files) / 1e6
            out["corpora"][name] = {"files": len(files), "studies": len(groups), "MB": megabytes}
            bodies = [(*multipart(group), len(group)) for group in groups]
            for rep in range(cfg.stow_reps):
                cases = STOW_CASES if rep % 2 == 0 else tuple(reversed(STOW_CASES))
                for case in cases:
                    secs = stow_case(case, work, template, token, files, bodies)
                    row = {"corpus": name, "case": case, "rep": rep, "seconds": secs,
                           "files_s": len(files) / secs, "MB_s": megabytes / secs}  # fmt: skip
                    out["runs"].append(row)
                    print(f"  {name:6} {case:16} {secs:6.2f} s  {row['files_s']:6.1f} files/s "
                          f"{row['MB_s']:6.1f} MB/s", flush=True)  # fmt: skip
            del bodies
    finally:
        shutil.rmtree(template, ignore_errors=True)


# ------------------------------------------------------------------ WADO-RS

PROCESS_ALL = """
import time
from dicomnet.ingest.pipeline import process_instance
from dicomnet.models import DicomInstance
start = time.perf_counter()
ids = list(DicomInstance.objects.exclude(state="PROCESSED").values_list("pk", flat=True))
outcomes = [process_instance(pk) for pk in ids]
left = DicomInstance.objects.exclude(state="PROCESSED").count()
print("PROCESSED", len(ids), left, time.perf_counter() - start, sorted(set(outcomes)))
"""


def retrieve(session: requests.Session, url: str) -> dict:
    """GET a study as multipart/related; the bytes, the parts and the timings."""
    start = time.perf_counter()
    r = session.get(url, headers={"Accept": MULTIPART_DICOM}, stream=True)
    if r.status_code != 200:
        raise RuntimeError(f"WADO {url}: {r.status_code} {r.text[:300]}")
    boundary = b"--" + next(
        p.split("=", 1)[1].strip().strip('"').encode()
        for p in r.headers["Content-Type"].split(";")
        if p.strip().lower().startswith("boundary=")
    )
    size, parts, tail, first = 0, 0, b"", None
    for chunk in r.iter_content(chunk_size=1 << 20):
        if first is None:
            first = time.perf_counter() - start
        window = tail + chunk
        parts += window.count(boundary)
        tail = window[-(len(boundary) - 1) :]
        size += len(chunk)
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "first_byte_s": first, "bytes": size, "parts": parts - 1}


def _iter_wado(studies: dict[str, list[list[Path]]]) -> Iterator[tuple[str, list[Path]]]:
    yield "CBCT (300 slices)", studies["cbct"][0]
    dental = next(g for g in studies["dental"] if {f.name[:2] for f in g} == {"IO", "PX"})
    yield f"dental study ({len(dental)} images: IO + PX)", dental


def phase_wado(cfg, work: Path, record: dict) -> None:
    studies = corpus_studies()
    targets = list(_iter_wado(studies))
    template, token = nexrel_template(work)
    out = record.setdefault("wado", {"studies": {}, "runs": []})
    run = work / "wado-nexrel"
    env = fresh_nexrel(template, run)
    shutil.rmtree(work / "wado-orthanc", ignore_errors=True)
    orthanc = orthanc_dicomweb(work / "wado-orthanc", sync=True)
    web = NexrelWeb(env, run / "web.log")
    try:
        servers = {
            "Orthanc": (client(), f"http://127.0.0.1:{orthanc.http}/dicom-web"),
            "Nexrel": (client(token), web.base),
        }
        for label, files in targets:
            body = multipart(files)
            uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
            megabytes = sum(f.stat().st_size for f in files) / 1e6
            out["studies"][label] = {"uid": uid, "files": len(files), "MB": megabytes}
            for session, base in servers.values():
                stow(session, f"{base}/studies", [(*body, len(files))])
        text = manage(env, "shell", "-c", PROCESS_ALL)
        line = next(x for x in text.splitlines() if x.startswith("PROCESSED"))
        out["nexrel_processing"] = line
        print(f"  Nexrel pipeline: {line}", flush=True)
        for label, files in targets:
            uid = out["studies"][label]["uid"]
            for rep in range(cfg.wado_reps):
                order = list(servers) if rep % 2 == 0 else list(reversed(servers))
                for server in order:
                    session, base = servers[server]
                    row = retrieve(session, f"{base}/studies/{uid}")
                    if row["parts"] != len(files):
                        raise RuntimeError(f"WADO {server} {label}: {row['parts']} parts")
                    row.update(study=label, server=server, rep=rep,
                               MB_s=row["bytes"] / 1e6 / row["seconds"])  # fmt: skip
                    out["runs"].append(row)
                    print(f"  {server:8} {label:36} {row['seconds']:6.2f} s "
                          f"{row['MB_s']:7.1f} MB/s  first byte {row['first_byte_s']:.3f} s",
                          flush=True)  # fmt: skip
    finally:
        web.stop()
        orthanc.stop()
        shutil.rmtree(work / "wado-orthanc", ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(template, ignore_errors=True)


# ------------------------------------------------------------------ report


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def report(record: dict) -> str:
    lines = []
    qido = record.get("qido")
    if qido:
        orth = qido.get("Orthanc", {})
        lines += [
            f"QIDO-RS GET studies, {record['studies']} studies "
            f"(Orthanc holds {qido.get('orthanc_studies')})",
            "",
            "| query | server | answers | keep-alive p50 / p95 ms | p95 / Orthanc "
            "| new connection p50 / p95 ms | p95 / Orthanc |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for label, query in QUERIES:
            for server in ("Nexrel (SQLite)", "Nexrel (PostgreSQL)", "Orthanc"):
                if server not in qido:
                    continue
                cells = []
                for mode in MODES:
                    r = qido[server][mode][label]
                    base = orth.get(mode, {}).get(label, {}).get("p95_ms")
                    ratio = f"{r['p95_ms'] / base:.2f}" if base else "-"
                    cells.append(f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} | {ratio}")
                lines.append(f"| {label} `{query}` | {server} | {r['matches']} | "
                             + " | ".join(cells) + " |")  # fmt: skip
        lines.append("")
    stow_ = record.get("stow")
    if stow_:
        lines += ["| corpus | case | median s | files/s | MB/s | files/s / Orthanc STOW-RS |",
                  "|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for name, meta in stow_["corpora"].items():
            rows = [r for r in stow_["runs"] if r["corpus"] == name]
            medians = {c: _median([r for r in rows if r["case"] == c], "seconds")
                       for c in STOW_CASES if any(r["case"] == c for r in rows)}  # fmt: skip
            base = medians.get("Orthanc STOW-RS")
            for case, secs in medians.items():
                ratio = f"{base / secs:.2f}" if base else "-"
                lines.append(f"| {name} ({meta['files']} files, {meta['MB']:.0f} MB) | {case} | "
                             f"{secs:.2f} | {meta['files'] / secs:.1f} | {meta['MB'] / secs:.1f} "
                             f"| {ratio} |")  # fmt: skip
        lines.append("")
    wado = record.get("wado")
    if wado:
        lines += ["| study | server | median s | median MB/s | first byte s | MB/s / Orthanc |",
                  "|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for label, meta in wado["studies"].items():
            rows = [r for r in wado["runs"] if r["study"] == label]
            base = _median([r for r in rows if r["server"] == "Orthanc"], "MB_s") if rows else 0
            for server in ("Nexrel", "Orthanc"):
                mine = [r for r in rows if r["server"] == server]
                if not mine:
                    continue
                mbs, secs = _median(mine, "MB_s"), _median(mine, "seconds")
                first = _median(mine, "first_byte_s")
                lines.append(f"| {label}, {meta['MB']:.0f} MB | {server} | {secs:.2f} | "
                             f"{mbs:.1f} | {first:.3f} | {mbs / base:.2f} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default="qido,stow,wado")
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30, help="timed queries per QIDO query")
    parser.add_argument("--stow-reps", type=int, default=3)
    parser.add_argument("--wado-reps", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true", help="QIDO on SQLite only")
    parser.add_argument("--work", type=Path, default=Path("/tmp/nexrel-bench-dicomweb"))
    parser.add_argument(
        "--keep-orthanc", action="store_true", help="keep Orthanc's loaded storage in --work"
    )
    cfg = parser.parse_args()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = HERE / "results" / f"dicomweb-{stamp}"
    results.mkdir(parents=True)
    record = {"studies": cfg.studies, "started": stamp, "argv": sys.argv[1:]}
    phases = cfg.phases.split(",")
    try:
        if "qido" in phases:
            phase_qido(cfg, cfg.work, record)
        if "stow" in phases:
            phase_stow(cfg, cfg.work, record)
        if "wado" in phases:
            phase_wado(cfg, cfg.work, record)
    finally:
        (results / "results.json").write_text(json.dumps(record, indent=1, default=str))
        (results / "summary.md").write_text(report(record))
        if not cfg.keep_orthanc:
            shutil.rmtree(cfg.work / "orthanc-qido", ignore_errors=True)
    print(report(record))
    print(f"results: {results}")


if __name__ == "__main__":
    main()
