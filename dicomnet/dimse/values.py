"""Stored DICOM values (DA, TM) read leniently: what devices send, as Python values or None.

Matching keys are parsed strictly instead (``dicomnet.dimse.matching``): a bad key is the
querier's error, a bad stored value only an empty field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")


def parse_da(value: Any) -> dt.date | None:
    # PS3.5 6.2 asks readers to accept the ACR-NEMA form yyyy.mm.dd too.
    text = str(value or "").strip().replace(".", "")
    try:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date() if len(text) >= 8 else None
    except ValueError:
        return None


def parse_tm(value: Any) -> dt.time | None:
    """A TM with its fraction: "083015.4" is 08:30:15.400000; a leap second (60) reads as 59."""
    text = str(value or "").strip().replace(":", "")
    match = _TM.match(text)  # what follows a valid start is ignored, as before
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    try:
        return dt.time(
            int(hours),
            int(minutes or 0),
            min(int(seconds or 0), 59),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        return None
