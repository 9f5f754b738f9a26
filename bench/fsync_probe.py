#!/usr/bin/env python3
"""The durable ceiling: how fast this disk can make files of the corpus's sizes durable.

For each file of the corpus, in order: write that many bytes to a new file, fsync it, rename
it into a directory and fsync the directory: what Nexrel's spool does before each C-STORE
Success (``dicomnet/ingest/storage.py``), with no network, parsing or database. The files/s
this reaches, divided by DCMTK ``storescp``'s (which does not fsync) in the same run, is the
*durable ceiling*: the best ratio any receiver that fsyncs every object could reach.
``run_bench.py`` runs it as the ``fsync-probe`` receiver, alternating with the others.

    bench/fsync_probe.py bench/corpus/cbct --dir /tmp/nexrel-bench/probe
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def probe(sizes: list[int], directory: Path, *, parallel: int = 1) -> float:
    """Write, fsync and rename one file per size into ``directory``; return wall seconds.

    ``parallel`` writers (threads: fsync releases the GIL) share the sizes as the
    associations of a case share the corpus (``run_bench.send``).
    """
    shutil.rmtree(directory, ignore_errors=True)
    tmp, final = directory / "tmp", directory / "objects"
    tmp.mkdir(parents=True)
    final.mkdir()
    payload = memoryview(os.urandom(max(sizes)))
    numbered = list(enumerate(sizes))
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        for done in [
            pool.submit(_write_all, numbered[k::parallel], payload, tmp, final)
            for k in range(parallel)
        ]:
            done.result()
    wall = time.perf_counter() - start
    shutil.rmtree(directory, ignore_errors=True)
    return wall


def _write_all(
    numbered: list[tuple[int, int]], payload: memoryview, tmp: Path, final: Path
) -> None:
    for i, size in numbered:
        path = tmp / f"{i}.part"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = payload[:size]
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(path, final / f"{i}.dcm")
        fsync_path(final)


def corpus_sizes(corpus: Path) -> list[int]:
    return [p.stat().st_size for p in sorted(corpus.rglob("*.dcm"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/nexrel-bench/probe"))
    ap.add_argument("--parallel", type=int, default=1)
    cfg = ap.parse_args()
    sizes = corpus_sizes(cfg.corpus)
    wall = probe(sizes, cfg.dir, parallel=cfg.parallel)
    print(f"{len(sizes)} files, {sum(sizes) / 1e6:.1f} MB: {len(sizes) / wall:.1f} files/s")


if __name__ == "__main__":
    main()
