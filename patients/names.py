"""Person names folded for comparison: one definition for matching, search and C-FIND.

No imports from the rest of Nexrel: models, matching and every DIMSE matcher use it.
"""

from __future__ import annotations

import re
import unicodedata

# French particles written in several ways on devices and charts.
_PARTICLES = {"st": "saint", "ste": "sainte"}
_SEPARATORS = re.compile(r"[\^\-_,.'’\s]+")


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise_name(name: str) -> str:
    """Fold a person name for comparison: "Côté^Zoé" and "COTE ZOE" give "cote zoe".

    Accents and case are dropped; ``^``, hyphens, apostrophes and spaces are alike;
    "St"/"Ste" become "saint"/"sainte". Empty DICOM PN components are dropped.
    """
    folded = strip_accents(name).casefold()
    tokens = [t for t in _SEPARATORS.split(folded) if t]
    return " ".join(_PARTICLES.get(t, t) for t in tokens)


def split_person_name(pn: str) -> tuple[str, str]:
    """Family and given names of a DICOM PN (alphabetic group only)."""
    alphabetic = pn.split("=")[0]
    parts = alphabetic.split("^")
    family = parts[0] if parts else ""
    given = parts[1] if len(parts) > 1 else ""
    return family.strip(), given.strip()


def display_person_name(pn: str | None) -> str:
    """A DICOM PN as people read it: "Lestrade^G" gives "Lestrade, G", "OB^^^^" gives "OB".

    Only the alphabetic group is shown; empty components are dropped; the family name
    comes first, then the given and middle names, then prefix and suffix.
    """
    alphabetic = (pn or "").split("=")[0]
    parts = [p.strip() for p in alphabetic.split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    rest = " ".join(p for p in (prefix, given, middle, suffix) if p)
    if family and rest:
        return f"{family}, {rest}"
    return family or rest
