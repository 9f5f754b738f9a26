"""atheris (libFuzzer) on the parse → preview path: ``tests.fuzzing.parse_and_preview`` on
each input as a DICOM file. An exception it lets out (anything but the documented errors),
a run past ``-timeout`` or an RSS past ``-rss_limit_mb`` is a crash, saved with its input.

Seeded with pydicom's test files and our samples (``tests.fuzzing.seeds``): run by
``make fuzz`` (fuzz/run.py), or by hand with libFuzzer's options:
    .venv/bin/python fuzz/ingest.py var/fuzz/ingest -max_total_time=60
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

with atheris.instrument_imports(include=["pydicom", "dicomnet", "tests"]):
    import django

    django.setup()
    from tests.fuzzing import parse_and_preview

# The input being run, in memory. Removed at a normal exit; kept when the process is
# killed (a hang past -timeout, a native crash), as the input to look at.
WORK = Path(tempfile.mkdtemp(prefix="nexrel-fuzz-ingest-", dir="/dev/shm")) / "object.dcm"
atexit.register(shutil.rmtree, WORK.parent, True)


def test_one_input(data: bytes) -> None:
    WORK.write_bytes(data)
    parse_and_preview(WORK)


if __name__ == "__main__":
    import logging
    import warnings

    logging.disable(logging.CRITICAL)  # pydicom warns on every odd element
    warnings.simplefilter("ignore")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
