"""atheris (libFuzzer) on the STOW-RS multipart parser: ``tests.fuzzing.stow_parts`` on
each input as a body, read in chunks of a size taken from its first byte. The parser must
not raise, must yield each part whole or with an error, and must leave no temp file.

Seeded with bodies of our samples: run by ``make fuzz`` (fuzz/run.py), or by hand:
    .venv/bin/python fuzz/stow.py var/fuzz/stow -max_total_time=60
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexrel.settings")

with atheris.instrument_imports(include=["dicomnet.dicomweb", "tests.fuzzing"]):
    import django

    django.setup()
    from tests.fuzzing import stow_parts

TMP = Path(tempfile.mkdtemp(prefix="nexrel-fuzz-stow-", dir="/dev/shm"))
atexit.register(shutil.rmtree, TMP, True)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    chunk = 1 + data[0] * 16  # 1 to 4081 bytes a read
    stow_parts(data[1:], chunk=chunk, tmp_dir=TMP)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
