"""C-FIND matching (PS3.4 C.2.2.2): the one set of primitives every SCP builds its query from.

The query/retrieve SCP (``dicomnet.qr.matching``), the worklist SCP
(``worklist.mwl_matching``) and QIDO-RS keep only their table from keyword to field and
call these:
- ``values``/``single``: a key's values, strictly read (a sequence, undecodable bytes or
  a second value where one is allowed is a ``MalformedIdentifier``, answered 0xA900);
- ``string_q``: single value, list of values (UIDs, or any multi-valued key) and wildcards
  (``*``, ``?``), in every value of a list too; ``*`` alone is universal matching;
- ``multivalued_field_q``: the same against a field that stores several values joined by
  backslashes (ModalitiesInStudy);
- ``date_range``, ``time_range``, ``datetime_range`` and ``date_time_range``: ranges with the
  bounds of C.2.2.2.5: ``083015`` is 08:30:15.000000 to 08:30:15.999999, ``0830`` the whole
  minute, ``08`` the whole hour; a range's upper bound is the last instant of its value.
  A leap second (``SS`` = 60) is read as second 59, on both bounds, everywhere;
- ``person_name_match``: PN matching, accent- and case-insensitive, through
  ``patients.names.normalise_name`` ("cote*" and "CÔTÉ*" find "Côté^Zoé"; a family name
  alone finds the family name);
- ``read_identifier``: an identifier without SpecificCharacterSet is read in the device
  profile's character set.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q
from pydicom import Dataset
from pydicom.charset import convert_encodings
from pydicom.multival import MultiValue

from patients.names import normalise_name, split_person_name

WILDCARD = re.compile(r"[*?]")
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?")
_DATETIME = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?(?:([+-])(\d{2})(\d{2}))?"
)

_DT_BODY = r"\d{4,14}(?:\.\d{1,6})?(?:[+-]\d{4})?"
_DATETIME_RANGE = re.compile(rf"(?P<low>{_DT_BODY})?-(?P<high>{_DT_BODY})?")


class MalformedIdentifier(ValueError):
    """The identifier can't be decoded, or a key's value breaks its VR or the standard."""


# ------------------------------------------------------------------------ reading keys


def read_identifier(read: Callable[[], Dataset], character_set: str) -> Dataset:
    """The identifier pynetdicom decodes lazily, in ``character_set`` when it declares none."""
    try:
        identifier = read()
    except Exception as exc:  # pynetdicom could not decode the identifier's bytes
        raise MalformedIdentifier(f"undecodable identifier: {exc}") from exc
    if "SpecificCharacterSet" not in identifier:
        assume_character_set(identifier, character_set)
    return identifier


def assume_character_set(identifier: Dataset, character_set: str) -> None:
    """Read an identifier that declares no character set as ``character_set``.

    pydicom decodes text values when they are first read, with the encodings the data set
    was read with: the values still raw are re-pointed here, before any is read.
    """
    implicit, little = identifier.original_encoding
    identifier.set_original_encoding(implicit, little, convert_encodings(character_set))
    identifier.SpecificCharacterSet = character_set


def values(ds: Dataset, keyword: str, *, keep_star: bool = False) -> list[str]:
    """The key's values as stripped strings; [] for universal matching (absent, empty, "*").

    ``keep_star`` keeps a lone "*" for keys where it differs from an empty key (the MWL
    step status: empty means the default statuses, "*" every status).
    """
    if keyword not in ds:
        return []
    try:
        element = ds[keyword]
        value = element.value
    except Exception as exc:  # pydicom decoding a bad value
        raise MalformedIdentifier(f"{keyword} can't be decoded: {exc}") from exc
    if element.VR == "SQ":
        raise MalformedIdentifier(f"{keyword} is a sequence")
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, MultiValue | list) else [value]
    texts = []
    for item in items:
        if isinstance(item, bytes):
            raise MalformedIdentifier(f"{keyword} has an undecodable value")
        texts.append(str(item).strip())
    texts = [t for t in texts if t]
    return [] if texts == ["*"] and not keep_star else texts


def single(ds: Dataset, keyword: str) -> str:
    """A key that takes one value or one range (dates, times, names)."""
    found = values(ds, keyword)
    if len(found) > 1:
        raise MalformedIdentifier(f"{keyword} takes a single value or a range")
    return found[0] if found else ""


# ------------------------------------------------------------------------ strings


def wildcard_regex(pattern: str, *, any_char: str = ".") -> str:
    """``*`` and ``?`` of a DICOM pattern as a regex body (no anchors)."""
    return "".join(
        f"{any_char}*" if c == "*" else any_char if c == "?" else re.escape(c) for c in pattern
    )


def string_q(field: str, found: list[str]) -> Q:
    """Single value, list of values and wildcard matching of ``found`` on ``field``.

    [] or a "*" among the values match everything. A value whose only wildcard is a
    trailing "*" becomes a prefix (index friendly); other wildcards a regex.
    """
    if not found or "*" in found:
        return Q()
    plain = [v for v in found if not WILDCARD.search(v)]
    alternatives = [Q(**{f"{field}__in": plain})] if len(plain) > 1 else []
    if len(plain) == 1:
        alternatives.append(Q(**{field: plain[0]}))
    for value in found:
        if not WILDCARD.search(value):
            continue
        if value.endswith("*") and not WILDCARD.search(value[:-1]):
            # LIKE narrows (on an index in PostgreSQL) but ignores case in SQLite; the regex
            # keeps the match case-sensitive (PS3.4 C.2.2.2.4) on both.
            prefix = value[:-1]
            alternatives.append(
                Q(**{f"{field}__startswith": prefix, f"{field}__regex": f"^{re.escape(prefix)}"})
            )
        else:
            alternatives.append(Q(**{f"{field}__regex": f"^{wildcard_regex(value)}$"}))
    return functools.reduce(operator.or_, alternatives)


def multivalued_field_q(field: str, found: list[str]) -> Q:
    """Any of ``found`` equal to (or matching) one of the backslash-joined values in ``field``."""
    if not found or "*" in found:
        return Q()
    alternatives = []
    for value in found:
        if WILDCARD.search(value):
            body = wildcard_regex(value, any_char="[^\\\\]")
            alternatives.append(Q(**{f"{field}__regex": rf"(^|\\){body}(\\|$)"}))
            continue
        # One value among the backslash-joined ones, case-sensitive on both databases (LIKE
        # ignores case in SQLite).
        alternatives.append(Q(**{f"{field}__regex": rf"(^|\\){re.escape(value)}(\\|$)"}))
    return functools.reduce(operator.or_, alternatives)


def int_q(field: str, found: list[str], keyword: str) -> Q:
    if not found:
        return Q()
    try:
        numbers = [int(v) for v in found]
    except ValueError as exc:
        raise MalformedIdentifier(f"{keyword} {found!r} is not an integer") from exc
    return Q(**{f"{field}__in": numbers})


# ------------------------------------------------------------------------ dates and times


def parse_date(text: str) -> dt.date:
    if not _DATE.fullmatch(text):
        raise MalformedIdentifier(f"{text!r} is not a date (DICOM DA: YYYYMMDD)")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise MalformedIdentifier(f"{text!r} is not a date: no such day") from None


def _last_instant(low: dt.time, minutes: str | None, seconds: str | None, fraction: str | None):
    if minutes is None:
        return low.replace(minute=59, second=59, microsecond=999_999)
    if seconds is None:
        return low.replace(second=59, microsecond=999_999)
    step = 10 ** (6 - len(fraction)) if fraction else 1_000_000
    return low.replace(microsecond=low.microsecond + step - 1)


def time_bounds(text: str) -> tuple[dt.time, dt.time]:
    """The first and last instant a DICOM time denotes: "08" is 08:00:00 to 08:59:59.999999."""
    match = _TIME.fullmatch(text.replace(":", ""))  # ACR-NEMA style "08:30" is still seen
    if not match:
        raise MalformedIdentifier(f"{text!r} is not a time (DICOM TM: HHMMSS.FFFFFF)")
    hours, minutes, seconds, fraction = match.groups()
    try:
        low = dt.time(
            int(hours),
            int(minutes or 0),
            _second(seconds),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        raise MalformedIdentifier(f"{text!r} is not a time: out of range") from None
    return low, _last_instant(low, minutes, seconds, fraction)


def _second(seconds: str | None) -> int:
    value = int(seconds or 0)
    if value == 60:  # a leap second: Python's time has none, so it is the minute's last
        return 59
    return value


def datetime_bounds(text: str) -> tuple[dt.datetime, dt.datetime]:
    """The first and last instant a DICOM DT denotes ("2026" is the whole year).

    With a UTC offset (``&ZZXX``) both bounds are aware; without one they are naive, and the
    caller gives them the practice's time zone.
    """
    match = _DATETIME.fullmatch(text)
    if not match:
        raise MalformedIdentifier(f"{text!r} is not a DICOM date-time (YYYYMMDDHHMMSS.FFFFFF&ZZXX)")
    year, month, day, hours, minutes, seconds, fraction, sign, zh, zm = match.groups()
    try:
        first_day = dt.date(int(year), int(month or 1), int(day or 1))
        if month is None:
            last_day = dt.date(int(year), 12, 31)
        elif day is None:
            next_month = dt.date(int(year) + int(month) // 12, int(month) % 12 + 1, 1)
            last_day = next_month - dt.timedelta(days=1)
        else:
            last_day = first_day
        if hours is None:
            low_time, high_time = dt.time.min, dt.time.max
        else:
            low_time, high_time = time_bounds(f"{hours}{minutes or ''}{seconds or ''}")
            if fraction:
                low_time, high_time = time_bounds(f"{hours}{minutes}{seconds}.{fraction}")
        zone = None
        if sign:
            offset = dt.timedelta(hours=int(zh), minutes=int(zm))
            zone = dt.timezone(-offset if sign == "-" else offset)
    except ValueError:
        raise MalformedIdentifier(f"{text!r} is not a valid date-time") from None
    return (
        dt.datetime.combine(first_day, low_time, tzinfo=zone),
        dt.datetime.combine(last_day, high_time, tzinfo=zone),
    )


def _split_range(text: str) -> tuple[str, str] | None:
    """ "A-B", "-B", "A-" as (A, B) with "" for an open end; None for a single value."""
    if "-" not in text:
        return None
    low, _, high = text.partition("-")
    if not (low.strip() or high.strip()):
        raise MalformedIdentifier(f"{text!r} is an empty range")
    if "-" in high:
        raise MalformedIdentifier(f"{text!r} is neither a single value nor a range (A-B, -B, A-)")
    return low.strip(), high.strip()


def _range(text: str, bounds: Callable[[str], tuple]) -> tuple:
    """(low, high) of a single value or a range; None for an open end."""
    parts = _split_range(text)
    if parts is None:
        return bounds(text)
    low, high = parts
    return (bounds(low)[0] if low else None), (bounds(high)[1] if high else None)


def date_range(text: str) -> tuple[dt.date | None, dt.date | None]:
    return _range(text, lambda v: (parse_date(v), parse_date(v)))


def time_range(text: str) -> tuple[dt.time | None, dt.time | None]:
    return _range(text, time_bounds)


def datetime_range(text: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """A DT value or range; a DT's own UTC offset may hold a "-" too ("-0500")."""
    single = _DATETIME.fullmatch(text)
    if single is not None and single.group(8) and len(text) >= 15:
        # "202601050830-0500" is one value with its offset; "2026-2027" stays a range.
        return datetime_bounds(text)
    match = _DATETIME_RANGE.fullmatch(text)
    if match is None:
        return datetime_bounds(text)
    low, high = match.group("low"), match.group("high")
    if not (low or high):
        raise MalformedIdentifier(f"{text!r} is an empty range")
    return (datetime_bounds(low)[0] if low else None), (datetime_bounds(high)[1] if high else None)


def date_time_range(
    date_text: str, time_text: str, zone: dt.tzinfo
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """A date key and its time key combined (C.2.2.2.5.2): "20260105-20260107" with
    "1000-1800" runs from 10:00 on the 5th to 18:00 on the 7th, in ``zone``."""
    date_low, date_high = date_range(date_text)
    time_low, time_high = time_range(time_text) if time_text else (None, None)
    low = high = None
    if date_low is not None:
        low = dt.datetime.combine(date_low, time_low or dt.time.min, tzinfo=zone)
    if date_high is not None:
        high = dt.datetime.combine(date_high, time_high or dt.time.max, tzinfo=zone)
    return low, high


def bounds_q(field: str, low: object, high: object) -> Q:
    q = Q()
    if low is not None:
        q &= Q(**{f"{field}__gte": low})
    if high is not None:
        q &= Q(**{f"{field}__lte": high})
    return q


def range_q(field: str, text: str, parse: Callable[[str], tuple]) -> Q:
    """A key's value or range (``date_range``, ``time_range``...) as bounds on ``field``."""
    if not text:
        return Q()
    return bounds_q(field, *parse(text))


# ------------------------------------------------------------------------ person names


@functools.lru_cache(maxsize=262_144)
def folded_name(stored: str) -> str:
    return normalise_name(stored.split("=")[0])


@functools.lru_cache(maxsize=262_144)
def folded_family(stored: str) -> str:
    return normalise_name(split_person_name(stored)[0])


@dataclass(frozen=True)
class PersonNameMatch:
    """A PatientName key, folded: ``key_q`` narrows in the database, calling it decides.

    ``folded`` is the key folded as stored names are (``normalise_name``, alphabetic group
    only). Without wildcards a key with a given name must equal the whole name; a family
    name alone ("COTE", "Côté^") must equal the family name ("Saint" does not find
    "Saint-Pierre^François"). With wildcards the folded name must match the pattern; "Côté^*"
    also finds a patient without a given name, "*^Zoé" one without a family name.
    """

    folded: str
    family_only: bool
    regex: re.Pattern[str] | None

    def key_q(self, field: str) -> Q:
        """An index range on the stored folded name: the pattern's literal start."""
        literal = WILDCARD.split(self.folded, maxsplit=1)[0].rstrip(" ")
        if not literal:
            return Q()
        if self.regex is None and not self.family_only:
            return Q(**{field: self.folded})
        above = literal[:-1] + chr(ord(literal[-1]) + 1)
        return Q(**{f"{field}__gte": literal, f"{field}__lt": above})

    def __call__(self, stored: str) -> bool:
        if self.regex is not None:
            return self.regex.fullmatch(folded_name(stored)) is not None
        if folded_name(stored) == self.folded:
            return True
        return self.family_only and folded_family(stored) == self.folded


def person_name_match(value: str) -> PersonNameMatch | None:
    """The PN key ``value`` as a ``PersonNameMatch``; None for universal matching."""
    alphabetic = value.split("=")[0]  # ideographic and phonetic groups are not matched
    folded = normalise_name(alphabetic)
    if set(folded) <= {"*", " "}:
        return None
    if WILDCARD.search(folded):
        body = wildcard_regex(folded)
        space_any = re.escape(" ") + ".*"
        if body.endswith(space_any):
            body = body[: -len(space_any)] + f"(?:{space_any})?"
        if body.startswith(".*" + re.escape(" ")):
            body = f"(?:.*{re.escape(' ')})?" + body[len(".*" + re.escape(" ")) :]
        return PersonNameMatch(folded, False, re.compile(body, re.DOTALL))
    _, given = split_person_name(alphabetic)
    family_only = not given and not alphabetic.strip("^ ").count("^")
    return PersonNameMatch(folded, family_only, None)
