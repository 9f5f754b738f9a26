#!/usr/bin/env python3
"""The header parse of one C-STORE, per file: ``read_header`` (the pipeline's and STOW's)
against ``read_store_header`` (the listener's), median and p95 over every file of each corpus.

In one process, the readers alternated over ``--rounds`` (each round times every file with
each in turn), after a warm-up round, so all see the same page cache and CPU. ``--baseline``
adds the readers of another tree's parsing.py (before and after in one run):

    git show OLD:dicomnet/ingest/parsing.py > /tmp/parsing_old.py
    .venv/bin/python bench/bench_header.py [--corpus cbct dental] [--rounds 5]
        [--baseline /tmp/parsing_old.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexrel.settings")

import django  # noqa: E402

django.setup()

from stats import percentile  # noqa: E402

from dicomnet.ingest.parsing import read_header, read_store_header  # noqa: E402

READERS: dict[str, Callable[[Path], object]] = {
    "read_header": read_header,
    "read_store_header": read_store_header,
}


def baseline_readers(path: Path) -> dict[str, Callable[[Path], object]]:
    """The readers of the parsing.py at ``path`` (loaded as a module of its own), by name."""
    spec = importlib.util.spec_from_file_location("baseline_parsing", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return {
        f"{name} (baseline)": getattr(module, name) for name in READERS if hasattr(module, name)
    }


def timed(read: Callable[[Path], object], paths: list[Path]) -> list[float]:
    """Seconds per file, one call each."""
    out = []
    for path in paths:
        started = time.perf_counter()
        read(path)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["cbct", "dental"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another tree's dicomnet/ingest/parsing.py")
    args = parser.parse_args()
    readers = dict(READERS)
    if args.baseline:
        readers = {**baseline_readers(args.baseline), **readers}
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    print("| corpus | files | reader | median ms | p95 ms |")
    print("|---|---:|---|---:|---:|")
    for corpus in args.corpus:
        paths = sorted((HERE / "corpus" / corpus).glob("**/*.dcm"))
        if not paths:
            sys.exit(f"no files in bench/corpus/{corpus}: run bench/run_bench.py once")
        times: dict[str, list[float]] = {name: [] for name in readers}
        for read in readers.values():
            timed(read, paths)  # warm-up: page cache, imports, pydicom's dictionaries
        for _ in range(args.rounds):
            for name, read in readers.items():
                times[name] += timed(read, paths)
        medians = {}
        for name, values in times.items():
            medians[name] = percentile(values, 50) * 1e3
            p95 = percentile(values, 95) * 1e3
            print(f"| {corpus} | {len(paths)} | `{name}` | {medians[name]:.3f} | {p95:.3f} |")
        for name in readers:
            if name != "read_store_header":
                ratio = medians[name] / medians["read_store_header"]
                print(f"| {corpus} | | `{name}` / `read_store_header` | {ratio:.2f}x | |")


if __name__ == "__main__":
    main()
