#!/usr/bin/env python3
"""py-spy on Nexrel's listener (1 process) while DCMTK ``storescu`` sends a corpus.

Starts the listener as ``run_bench.py`` does (fresh database from its template, durability
on), records it with ``py-spy record --format raw --threads`` (wall-clock samples of every
thread, idle included), sends the corpus over ``--associations``, then prints the share of
samples per thread kind and the top functions, self and inclusive. The raw file can also be
read by any flame-graph tool.

    bench/profile_listener.py --corpus cbct --out /tmp/listener-cbct.txt
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_bench  # noqa: E402


def summarise(raw: Path, top: int = 25) -> str:
    """Shares of samples: per thread kind, then per function (self, then inclusive)."""
    rows = [line.rsplit(" ", 1) for line in raw.read_text().splitlines() if line.strip()]
    total = sum(int(n) for _, n in rows) or 1
    threads: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for stack, count in rows:
        frames, n = stack.split(";"), int(count)
        threads[re.sub(r"\d+", "", frames[0])[:60]] += n
        own[frames[-1][:110]] += n
        for frame in {re.sub(r":\d+\)", ")", f)[:110] for f in frames[1:]}:
            inclusive[frame] += n
    out = [f"{total} samples"]
    for title, counter, limit in (
        ("threads", threads, 8),
        ("self", own, top),
        ("inclusive", inclusive, top),
    ):
        out.append(f"--- {title}")
        out += [f"{100 * n / total:5.1f}% {name}" for name, n in counter.most_common(limit)]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", default="cbct", choices=["cbct", "dental"])
    ap.add_argument("--associations", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("/tmp/nexrel-listener-profile.txt"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/nexrel-bench-profile"))
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    cfg = ap.parse_args()
    corpora = run_bench.ensure_corpus()
    cfg.work.mkdir(parents=True, exist_ok=True)
    template = run_bench.make_nexrel_template(cfg.work, corpora["dental"])
    rx = run_bench.Receiver("nexrel", cfg.work, template)
    try:
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "-o", str(cfg.out),
             "--format", "raw", "-r", str(cfg.rate), "-p", str(rx.proc.pid), "--threads",
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1.5)
        files = run_bench.corpus_files(corpora[cfg.corpus])
        wall = run_bench.send(rx.port, rx.aec, files, cfg.associations)
        spy.send_signal(2)
        spy.wait(60)
    finally:
        rx.stop()
    print(f"{cfg.corpus}, {cfg.associations} association(s): {len(files) / wall:.1f} files/s")
    print(summarise(cfg.out))


if __name__ == "__main__":
    main()
