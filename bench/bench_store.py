#!/usr/bin/env python3
"""The durable receipt of one object, per file: ``store_instance`` as the listener calls it
(file fsynced and renamed, directory fsynced, row and task committed), without the network.

The C-STORE benchmark (``run_bench.py``) measures whole slices against storescp and
Orthanc; on a host whose disk and CPU vary from minute to minute its before/after ratios
move more than a change of a few hundred microseconds. This one times only the handler's
work, in this tree and, with ``--baseline TREE`` (``git archive OLD | tar -x -C TREE``), in
another tree's, alternated over ``--rounds``: each round, each tree stores every file of
the corpus into a fresh copy of a migrated SQLite database (durability on, as the
listener: WAL, ``synchronous=FULL``), one call per file, the file's digest given as the
listener's receiving writer gives it.

    .venv/bin/python bench/bench_store.py [--corpus cbct] [--rounds 5] [--baseline /tmp/base]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from stats import percentile  # noqa: E402

PY = sys.executable
FRAGMENT = 256 * 1024 - 6  # the data of one P-DATA-TF at the listener's DICOM_MAX_PDU


def worker(corpus: Path, root: Path) -> None:
    """In the tree ``root``: time ``store_instance`` on every file, print the seconds as JSON."""
    import time

    sys.path.insert(0, str(root))
    os.environ["DJANGO_SETTINGS_MODULE"] = "nexrel.settings"
    import django

    django.setup()
    from dicomnet.ingest.store import store_instance
    from dicomnet.net import incoming
    from patients.models import Practice

    practice = Practice.objects.get_or_create(name="Clinique bench")[0]
    durations = []
    for position, source in enumerate(sorted(corpus.rglob("*.dcm")), start=1):
        data = memoryview(source.read_bytes())
        started = time.perf_counter()
        # Written as the listener's receiving writer does, in PDU-sized fragments.
        received = incoming.IncomingFile(suffix=".dcm")
        for offset in range(0, len(data), FRAGMENT):
            received.write(data[offset : offset + FRAGMENT])
        path = Path(received.name)
        taken = incoming.take_received(path)
        assert taken is not None and taken.digest is not None
        written = time.perf_counter()
        store_instance(
            path,
            practice=practice,
            server=None,
            calling_ae="STORESCU",
            peer_address="127.0.0.1",
            position=position,
            digest=taken.digest,
        )
        durations.append((written - started, time.perf_counter() - written))
    print(json.dumps(durations))


def migrated_template(tree: Path, work: Path) -> Path:
    template = work / f"template-{tree.name}"
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    env = {**os.environ, "NEXREL_DATA_DIR": str(template)}
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=tree, env=env, check=True)
    return template


def run_round(tree: Path, template: Path, corpus: Path, work: Path) -> list[list[float]]:
    """(seconds writing the received file, seconds in ``store_instance``) per file."""
    data_dir = work / f"run-{tree.name}"
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(template, data_dir)
    env = {**os.environ, "NEXREL_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    script = tree / "bench" / "bench_store.py"
    if not script.exists():  # a tree from before this script: run ours with its sys.path
        script = Path(__file__).resolve()
    out = subprocess.run(
        [PY, str(script), "--worker", str(corpus), "--root", str(tree)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    shutil.rmtree(data_dir, ignore_errors=True)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", default="cbct", help="a corpus under bench/corpus")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", type=Path, help="another tree (with .venv linked)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-store")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, (args.root or ROOT).resolve())
        return
    corpus = ROOT / "bench" / "corpus" / args.corpus
    if not corpus.is_dir():
        sys.exit(f"{corpus}: build it first (run_bench.py does, on first use)")
    args.work.mkdir(parents=True, exist_ok=True)
    trees = {"this tree": ROOT}
    if args.baseline:
        trees = {"baseline": args.baseline.resolve(), **trees}
    templates = {name: migrated_template(tree, args.work) for name, tree in trees.items()}
    runs: dict[str, list[list[float]]] = {name: [] for name in trees}
    for round_ in range(args.rounds + 1):  # round 0 warms the page cache, not counted
        for name, tree in trees.items():
            calls = run_round(tree, templates[name], corpus, args.work)
            if round_:
                runs[name] += calls
            store_ms = percentile([s for _, s in calls], 50) * 1e3
            print(f"round {round_} {name}: store_instance median {store_ms:.2f} ms")
    print("\n| tree | files | part | median ms | p95 ms |\n|---|---:|---|---:|---:|")
    medians: dict[str, float] = {}
    for name, calls in runs.items():
        parts = {
            "writing the received file": [w for w, _ in calls],
            "store_instance": [s for _, s in calls],
            "both": [w + s for w, s in calls],
        }
        for part, values in parts.items():
            p50, p95 = percentile(values, 50) * 1e3, percentile(values, 95) * 1e3
            print(f"| {name} | {len(values)} | {part} | {p50:.3f} | {p95:.3f} |")
        medians[name] = percentile(parts["both"], 50)
    if args.baseline:
        ratio = medians["baseline"] / medians["this tree"]
        print(f"\nbaseline / this tree, median of both: {ratio:.2f}x")


if __name__ == "__main__":
    main()
