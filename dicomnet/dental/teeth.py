"""Teeth: the codes DICOM uses for them, FDI (ISO 3950) numbers and the Universal notation.

Images name their teeth in the Primary Anatomic Structure Sequence (0008,2228) with codes of
CID 4018 (permanent teeth) and CID 4019 (deciduous teeth): SNOMED CT (``SCT``) since 2017,
SNOMED RT (``SRT``, e.g. T-54210) before, and both are still sent by devices. Every code is
mapped here to the tooth's FDI number, the one form Nexrel stores; the Universal notation
(1–32, A–T) is only for display, when the practice chooses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydicom.sr.codedict import codes

FDI = "FDI"
UNIVERSAL = "UNIVERSAL"

# The tooth's place in its quadrant (1 central incisor … 8 third molar), from the CID
# concept's meaning.
_POSITIONS = {
    "central incisor": 1,
    "lateral incisor": 2,
    "lateral": 2,  # CID 4018 "Mandibular left lateral tooth" (sic)
    "canine": 3,
    "first premolar": 4,
    "second premolar": 5,
    "first molar": 6,
    "second molar": 7,
    "third molar": 8,
}
_DECIDUOUS_POSITIONS = {"first molar": 4, "second molar": 5}

# SNOMED RT tooth codes, in FDI order: the permanent teeth T-54210 (18) … T-54520 (48) and
# the deciduous T-54610 (51) … T-54800 (75), ten apart; quadrants in the order RT used.
_SRT_PERMANENT = (
    "18 17 16 15 14 13 12 11 21 22 23 24 25 26 27 28 "
    "38 37 36 35 34 33 32 31 41 42 43 44 45 46 47 48"
).split()
_SRT_DECIDUOUS = ("51 52 53 54 55 61 62 63 64 65 81 82 83 84 85 71 72 73 74 75").split()


def _fdi_from_meaning(meaning: str) -> str:
    """'Permanent maxillary right first molar tooth' → '16'."""
    text = meaning.lower().removesuffix(" tooth")
    deciduous = text.startswith("deciduous")
    upper = "maxillary" in text
    right = " right " in f" {text} "
    name = text.split(" right " if right else " left ", 1)[1]
    if deciduous:
        position = _DECIDUOUS_POSITIONS.get(name) or _POSITIONS[name]
        quadrant = (5 if right else 6) if upper else (8 if right else 7)
    else:
        position = _POSITIONS[name]
        quadrant = (1 if right else 2) if upper else (4 if right else 3)
    return f"{quadrant}{position}"


def _build() -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for n, fdi in enumerate(_SRT_PERMANENT):
        table[("SRT", f"T-54{210 + 10 * n}")] = fdi
    for n, fdi in enumerate(_SRT_DECIDUOUS):
        table[("SRT", f"T-54{610 + 10 * n}")] = fdi
    for cid in (codes.cid4018, codes.cid4019):
        for name in cid.dir():
            code = getattr(cid, name)
            table[(code.scheme_designator, code.value)] = _fdi_from_meaning(code.meaning)
    # SNOMED's own SCT ↔ SRT table adds the other codes of the same teeth: the SRT ids of the
    # current SCT concepts (T-54282 for 11) and the older SCT ids of the RT codes (7121006).
    from pydicom.sr._snomed_dict import mapping

    for sct, srt in mapping["SCT"].items():
        if ("SCT", sct) in table and ("SRT", srt) not in table:
            table[("SRT", srt)] = table[("SCT", sct)]
        elif ("SRT", srt) in table and ("SCT", sct) not in table:
            table[("SCT", sct)] = table[("SRT", srt)]
    return table


# (coding scheme designator, code value) → FDI number. "99SDM" (SNODENT) and the like are
# not in the CIDs and are left unmapped.
TOOTH_CODES: dict[tuple[str, str], str] = _build()

PERMANENT = [f"{q}{p}" for q in (1, 2, 3, 4) for p in range(1, 9)]
DECIDUOUS = [f"{q}{p}" for q in (5, 6, 7, 8) for p in range(1, 6)]
# The chart's order, as the dentist faces the patient: upper right to upper left, then lower
# left to lower right (the Universal order).
CHART_UPPER = [f"1{p}" for p in range(8, 0, -1)] + [f"2{p}" for p in range(1, 9)]
CHART_LOWER = [f"4{p}" for p in range(8, 0, -1)] + [f"3{p}" for p in range(1, 9)]


def fdi_for_code(scheme: str, value: str) -> str | None:
    """The FDI number of a CID 4018/4019 code (SCT or SRT), or None if it is not a tooth."""
    scheme = (scheme or "").strip().upper()
    if scheme == "SNM3":  # SNOMED RT's older designator
        scheme = "SRT"
    return TOOTH_CODES.get((scheme, (value or "").strip()))


def universal(fdi: str) -> str:
    """FDI '18' → Universal '1'; deciduous '55' → 'A'. Raises ValueError if not a tooth."""
    if len(fdi) != 2 or not fdi.isdigit():
        raise ValueError(f"not an FDI tooth number: {fdi!r}")
    quadrant, position = int(fdi[0]), int(fdi[1])
    if 1 <= quadrant <= 4 and 1 <= position <= 8:
        start = {1: 8, 2: 9, 3: 24, 4: 25}[quadrant]
        return str(start - position + 1 if quadrant in (1, 3) else start + position - 1)
    if 5 <= quadrant <= 8 and 1 <= position <= 5:
        start = {5: 5, 6: 6, 7: 15, 8: 16}[quadrant]
        index = start - position + 1 if quadrant in (5, 7) else start + position - 1
        return "ABCDEFGHIJKLMNOPQRST"[index - 1]
    raise ValueError(f"not an FDI tooth number: {fdi!r}")


def display(fdi: str, notation: str = FDI) -> str:
    """A tooth as the practice writes it."""
    return universal(fdi) if notation == UNIVERSAL else fdi


def display_all(teeth: Iterable[str], notation: str = FDI) -> list[str]:
    return [display(t, notation) for t in teeth]
