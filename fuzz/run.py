"""``make fuzz``: each harness (fuzz/ingest.py, fuzz/stow.py) for FUZZ_SECONDS (default 60),
one after the other, its corpus kept under var/fuzz/<harness>/ (seeded on first use) and its
crashes under var/fuzz/crashes/. Exits non-zero if any harness found a crash.

    make fuzz FUZZ_SECONDS=300
    .venv/bin/python fuzz/run.py --seconds 60 --only ingest
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexrel.settings")
HARNESSES = ("ingest", "stow")


def seed(harness: str, corpus: Path) -> None:
    import django

    django.setup()
    from tests.fuzzing import SEED_NAMES, seeds, stow_body

    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    samples = seeds()
    if harness == "ingest":
        for name, data in zip(SEED_NAMES, samples, strict=True):
            (corpus / name).write_bytes(data)
        for path in (ROOT / "fuzz" / "regressions").glob("*.dcm"):  # what crashed before
            (corpus / path.name).write_bytes(path.read_bytes())
    else:
        small = [s for s in samples if len(s) < 16_000][:3]
        for size in (0, 3, 255):  # the first byte sets the read size
            (corpus / f"body-{size}").write_bytes(bytes([size]) + stow_body(*small))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", 60)))
    parser.add_argument("--only", choices=HARNESSES)
    args = parser.parse_args(argv)
    crashes = ROOT / "var" / "fuzz" / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    failed = []
    for harness in [args.only] if args.only else HARNESSES:
        corpus = ROOT / "var" / "fuzz" / harness
        seed(harness, corpus)
        command = [
            sys.executable,
            str(ROOT / "fuzz" / f"{harness}.py"),
            str(corpus),
            f"-max_total_time={args.seconds}",
            "-timeout=20",
            "-rss_limit_mb=3072",
            "-max_len=131072",
            f"-artifact_prefix={crashes}/{harness}-",
            "-print_final_stats=1",
        ]
        print("$", " ".join(command), flush=True)
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", result.stderr))
        tail = "\n".join(result.stderr.splitlines()[-40:])
        print(
            f"{harness}: {stats.get('number_of_executed_units', '?')} executions in "
            f"{args.seconds} s, corpus {len(list(corpus.iterdir()))} inputs, "
            f"exit {result.returncode}"
        )
        if result.returncode:
            print(tail)
            failed.append(harness)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
