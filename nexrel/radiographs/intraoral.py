"""Intra-oral radiographs, 0.1 mm a pixel: bitewings (both jaws' crowns and crestal bone,
horizontal) and periapicals (one jaw's teeth from crowns to apices, vertical).

Teeth are laid out as the mount shows them, facing the patient: the patient's right on the
left, upper teeth 18 … 11 21 … 28, lower 48 … 41 31 … 38.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nexrel.radiographs.teeth import (
    BONE,
    Film,
    Mouth,
    expose,
    inside,
    paint_tooth,
    tooth_size,
    trabeculae,
)

MM_PER_PIXEL = 0.1  # a size 2 sensor: 40 x 30 mm
BITEWING_SHAPE = (300, 400)
PERIAPICAL_SHAPE = (400, 300)
UPPER_ARCH = [f"1{p}" for p in range(8, 0, -1)] + [f"2{p}" for p in range(1, 9)]
LOWER_ARCH = [f"4{p}" for p in range(8, 0, -1)] + [f"3{p}" for p in range(1, 9)]

# Each bitewing's teeth from the left as the mount shows the patient's right side (the left
# side is drawn mirrored), where the first tooth's distal edge is (mm), and the teeth it is
# about (the molars, or the premolars).
_BITEWING_LAYOUTS = {
    "molar": (("18", "17", "16", "15", "14"), ("48", "47", "46", "45", "44"), 1.0, -1.5),
    "premolar": (
        ("17", "16", "15", "14", "13", "12"),
        ("47", "46", "45", "44", "43", "42"),
        -5.0,
        -3.0,
    ),
}
_BITEWING_TEETH = {"molar": slice(0, 3), "premolar": slice(2, 4)}

Row = list[tuple[str, float, float]]  # (tooth, centre in mm from the left edge, squeeze)


def _left_side(fdi: str) -> str:
    return {"1": "2", "4": "3"}[fdi[0]] + fdi[1]


def _row(teeth: Sequence[str], start: float, *, oblique: bool) -> Row:
    """One jaw's teeth side by side, touching, from ``start`` mm. Seen ``oblique`` (a
    bitewing), the arch turns away from the sensor in front of the premolars: narrower."""
    row, edge = [], start
    for fdi in teeth:
        squeeze = 0.7 if oblique and int(fdi[1]) <= 3 else 1.0
        width = tooth_size(fdi)[0] * squeeze
        row.append((fdi, edge + width / 2, squeeze))
        edge += width - 0.2  # a little overlapped at the contacts
    return row


def _crest(row: Row, x_mm: np.ndarray) -> np.ndarray:
    """How far from the occlusal plane one jaw's bone begins (mm): 1.5 mm past the necks,
    the septa rising between the teeth."""
    centres = np.array([centre for _, centre, _ in row])
    necks = np.array([tooth_size(fdi)[1] for fdi, _, _ in row])
    crest = np.interp(x_mm, centres, necks) + 1.6
    for left, right in zip(centres[:-1], centres[1:], strict=True):
        crest -= 1.1 * np.exp(-np.square((x_mm - (left + right) / 2) / 0.9))
    return crest


def _film(
    shape: tuple[int, int],
    occlusal: np.ndarray,
    jaws: list[tuple[Row, int]],
    mouth: Mouth,
    rng: np.random.Generator,
) -> np.ndarray:
    """The attenuation of the jaws (each ``(row, direction)``: -1 above the occlusal plane,
    +1 below) around ``occlusal``: cheeks, 9 mm of alveolar bone from the crest (a thin
    cortex), and the teeth of the mouth."""
    rows, cols = shape
    mm = MM_PER_PIXEL
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    gap = np.abs(yy - occlusal) * mm
    density = trabeculae(shape, rng, 3) * BONE
    bone = np.zeros(shape)
    cortex = np.zeros(shape)
    for row, direction in jaws:
        side = (yy < occlusal) if direction < 0 else (yy >= occlusal)
        crest = _crest(row, xx * mm)
        bone += side * density * inside((gap - crest) / mm, 3)
        cortex += side * 0.12 * inside((0.3 - np.abs(gap - crest - 0.3)) / mm, 1.0)
    cheeks = 0.14 + 0.1 * np.clip((gap - 0.5) / 4, 0, 1)
    film = Film(cheeks + bone * 9.0 + cortex, bone, mm)
    for row, direction in jaws:
        for fdi, centre, squeeze in row:
            if not mouth.has(fdi):
                continue
            x = centre / mm
            y = occlusal[0, int(np.clip(x, 0, cols - 1))] + 2 * direction
            paint_tooth(film, fdi, x=x, y=y, direction=direction, mouth=mouth, squeeze=squeeze)
    return film.attenuation


def bitewing(region: str, side: str, mouth: Mouth, *, seed: int) -> np.ndarray:
    """A horizontal bitewing of ``region`` ("molar" or "premolar") on ``side`` ("right" or
    "left"): upper and lower crowns meeting at the occlusal plane, the crestal bone above
    and below. 300 x 400 pixels."""
    rng = np.random.default_rng(seed)
    rows, cols = BITEWING_SHAPE
    xx = np.arange(cols, dtype=np.float32)[None, :]
    occlusal = rows / 2 - 4 + 5 * np.sin(np.pi * xx / cols)  # the curve of Spee
    upper, lower, upper_start, lower_start = _BITEWING_LAYOUTS[region]
    if side == "left":  # drawn as the right side, with the left side's teeth, then mirrored
        upper, lower = tuple(map(_left_side, upper)), tuple(map(_left_side, lower))
    jaws = [
        (_row(upper, upper_start, oblique=True), -1),
        (_row(lower, lower_start, oblique=True), 1),
    ]
    attenuation = _film(BITEWING_SHAPE, occlusal, jaws, mouth, rng)
    return expose(attenuation if side == "right" else attenuation[:, ::-1], rng, noise=30)


def bitewing_teeth(region: str, side: str, mouth: Mouth) -> list[str]:
    """The teeth a bitewing is about, present in the mouth, upper then lower (FDI)."""
    upper, lower, _, _ = _BITEWING_LAYOUTS[region]
    wanted = [*upper[_BITEWING_TEETH[region]], *lower[_BITEWING_TEETH[region]]]
    teeth = wanted if side == "right" else [_left_side(t) for t in wanted]
    return [t for t in teeth if mouth.has(t)]


def periapical(teeth: Sequence[str], mouth: Mouth, *, seed: int) -> np.ndarray:
    """A vertical periapical of ``teeth`` (neighbours in one jaw, in the mount's order), in
    the middle, whole from crowns to apices; their neighbours at the edges. 400 x 300
    pixels."""
    rng = np.random.default_rng(seed)
    rows, cols = PERIAPICAL_SHAPE
    upper = teeth[0][0] in "12"
    arch = UPPER_ARCH if upper else LOWER_ARCH
    first, last = arch.index(teeth[0]), arch.index(teeth[-1])
    shown = arch[max(first - 1, 0) : last + 2]
    # Centre the teeth asked for: their middle at the sensor's.
    row = _row(shown, 0.0, oblique=False)
    asked = [centre for fdi, centre, _ in row if fdi in teeth]
    offset = cols * MM_PER_PIXEL / 2 - (asked[0] + asked[-1]) / 2
    row = [(fdi, centre + offset, squeeze) for fdi, centre, squeeze in row]
    xx = np.arange(cols, dtype=np.float32)[None, :]
    # The occlusal plane near the sensor's edge: the crowns in, a little tilted.
    edge = 4.5 / MM_PER_PIXEL
    occlusal = (rows - edge if upper else edge) + 0.03 * (xx - cols / 2)
    attenuation = _film(PERIAPICAL_SHAPE, occlusal, [(row, -1 if upper else 1)], mouth, rng)
    return expose(attenuation, rng, noise=30)
