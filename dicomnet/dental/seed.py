"""The mount templates Nexrel starts with (seeded by migration dicomnet 0011; practices edit
them in the admin afterwards). Slots are listed in the template's order: the order images
without tooth codes fill them. Viewed facing the patient: the patient's right on the left.
"""

from __future__ import annotations

PA, BW, PHOTO, ANY = "periapical", "bitewing", "photo", "any"

_UPPER_18 = [
    ["18", "17", "16"],
    ["15", "14"],
    ["13", "12"],
    ["11", "21"],
    ["22", "23"],
    ["24", "25"],
    ["26", "27", "28"],
]
_LOWER_18 = [
    ["48", "47", "46"],
    ["45", "44"],
    ["43", "42"],
    ["41", "31"],
    ["32", "33"],
    ["34", "35"],
    ["36", "37", "38"],
]
_UPPER_20 = [
    ["18", "17", "16"],
    ["15", "14"],
    ["13"],
    ["12", "11"],
    ["21", "22"],
    ["23"],
    ["24", "25"],
    ["26", "27", "28"],
]
_LOWER_20 = [
    ["48", "47", "46"],
    ["45", "44"],
    ["43"],
    ["42", "41"],
    ["31", "32"],
    ["33"],
    ["34", "35"],
    ["36", "37", "38"],
]
_BITEWINGS_4 = [
    ["18", "17", "16", "48", "47", "46"],
    ["15", "14", "45", "44"],
    ["24", "25", "34", "35"],
    ["26", "27", "28", "36", "37", "38"],
]
_BITEWINGS_2 = [
    ["17", "16", "15", "14", "47", "46", "45", "44"],
    ["24", "25", "26", "27", "34", "35", "36", "37"],
]


def _row(row: int, view: str, teeth: list[list[str]], first_column: int = 1) -> list[dict]:
    return [
        {"row": row, "column": first_column + n, "view": view, "teeth": t}
        for n, t in enumerate(teeth)
    ]


def _fmx(upper, lower, columns) -> list[dict]:
    bitewings = _row(2, BW, _BITEWINGS_4[:2]) + _row(2, BW, _BITEWINGS_4[2:], columns - 1)
    return _row(1, PA, upper) + bitewings + _row(3, PA, lower)


TEMPLATES: list[dict] = [
    {"key": "fmx-18", "name": "FMX 18", "columns": 7, "pick_by_count": True,
     "slots": _fmx(_UPPER_18, _LOWER_18, 7)},
    {"key": "fmx-20", "name": "FMX 20", "columns": 8, "pick_by_count": True,
     "slots": _fmx(_UPPER_20, _LOWER_20, 8)},
    {"key": "bitewings-4", "name": "4 bitewings", "columns": 4, "pick_by_count": True,
     "slots": _row(1, BW, _BITEWINGS_4)},
    {"key": "bitewings-2", "name": "2 bitewings", "columns": 2, "pick_by_count": True,
     "slots": _row(1, BW, _BITEWINGS_2)},
    {"key": "vertical-bitewings-4", "name": "4 vertical bitewings", "columns": 4,
     "slots": _row(1, BW, _BITEWINGS_4)},
    {"key": "anterior-periapicals", "name": "Anterior periapicals", "columns": 3,
     "slots": _row(1, PA, _UPPER_18[2:5]) + _row(2, PA, _LOWER_18[2:5])},
    {"key": "comparison", "name": "Comparison (2 side by side)", "columns": 2,
     "slots": _row(1, ANY, [[], []])},
    {"key": "photo-grid", "name": "Photo grid", "columns": 3,
     "slots": _row(1, PHOTO, [[]] * 3) + _row(2, PHOTO, [[]] * 3) + _row(3, PHOTO, [[]] * 3)},
    {"key": "free", "name": "Free", "columns": 4, "grows": True, "slots": []},
]  # fmt: skip


def seed_templates(MountTemplate, MountSlot) -> None:  # noqa: N803  (the migration's models)
    """Create the templates that are missing (by key); existing ones keep their edits."""
    for sort, spec in enumerate(TEMPLATES):
        template, created = MountTemplate.objects.get_or_create(
            key=spec["key"],
            defaults={
                "name": spec["name"],
                "columns": spec["columns"],
                "grows": spec.get("grows", False),
                "pick_by_count": spec.get("pick_by_count", False),
                "sort": sort,
            },
        )
        if created:
            for position, slot in enumerate(spec["slots"], start=1):
                MountSlot.objects.create(template=template, position=position, **slot)


def ensure_templates() -> None:
    """Seed the templates when there are none at all: a database flushed by the tests, or
    one built without migrations. Templates deleted one by one in the admin stay deleted."""
    from dicomnet.dental.models import MountSlot, MountTemplate

    if not MountTemplate.objects.exists():
        seed_templates(MountTemplate, MountSlot)
