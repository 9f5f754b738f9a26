"""Synthetic dental radiographs for the demo: 12-bit MONOCHROME2 pixels (radiopaque is
bright) that read as bitewings and a panoramic, drawn in a few tens of milliseconds. Nothing
here knows DICOM or the database (``nexrel.demo_images`` does).

The pixels are an X-ray projection of simple solids: each structure adds its attenuation
(per mm) times the length of the ray through it, and the detector shows
``1 - exp(-total)``. Teeth are round in cross-section, so their edges fade as real ones do.
Each tooth is drawn in its own frame, ``s`` across it and ``v`` along its long axis from the
occlusal surface to the apex, in mm: enamel over dentin, a pulp chamber and canals, roots
that displace the bone around them, in a dark ligament lined by bright lamina dura.
A patient's ``Mouth`` (missing teeth, restorations) is drawn the same in every image, so
one patient's panoramic and bitewings agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_VALUE = 4095  # 12 bits stored

# Linear attenuation, per mm of the ray (arbitrary units, chosen for contrast).
DENTIN, ENAMEL, BONE, LAMINA_DURA = 0.075, 0.16, 0.035, 0.22
FILLINGS = {"amalgam": 2.5, "composite": 0.28, "crown": 1.2, "root canal": 1.6}

# Mesio-distal width, crown height and root length of each tooth type in mm, (upper, lower).
_SIZES = {
    1: ((8.5, 10.5, 13.0), (5.4, 9.0, 12.5)),
    2: ((6.5, 9.0, 13.0), (5.9, 9.5, 14.0)),
    3: ((7.5, 10.0, 17.0), (6.9, 11.0, 16.0)),
    4: ((7.0, 8.5, 14.0), (7.0, 8.5, 14.0)),
    5: ((6.5, 7.5, 14.0), (7.0, 8.0, 14.5)),
    6: ((10.0, 7.5, 13.0), (11.0, 7.5, 14.0)),
    7: ((9.0, 7.0, 12.0), (10.5, 7.0, 13.0)),
    8: ((8.5, 6.5, 11.0), (10.0, 7.0, 11.0)),
}


@dataclass(frozen=True)
class Mouth:
    """What differs between patients: teeth missing, and the work done on others (by FDI
    number: "amalgam", "composite", "crown", "root canal")."""

    missing: frozenset[str] = frozenset()
    restorations: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def has(self, fdi: str) -> bool:
        return fdi not in self.missing


def tooth_size(fdi: str) -> tuple[float, float, float]:
    """(width, crown height, root length) of a permanent tooth, in mm."""
    return _SIZES[int(fdi[1])][0 if fdi[0] in "12" else 1]


def _chord(radius: np.ndarray | float, s: np.ndarray, depth: float = 1.0) -> np.ndarray:
    """The length of a ray through an oval section, ``radius`` across and ``depth`` times
    that along the ray, at ``s`` from its axis."""
    return 2 * depth * np.sqrt(np.clip(np.square(radius) - np.square(s), 0, None))


def _root_profile(t: np.ndarray) -> np.ndarray:
    """A root's radius along it (0 at the neck, 1 at the apex): nearly parallel-sided,
    tapering, rounded at the apex."""
    return (1 - 0.35 * t) * np.sqrt(np.clip(1 - t**4, 0, 1))


def _box(image: np.ndarray, width: int, axis: int) -> np.ndarray:
    """The mean over ``width`` (odd) neighbours along ``axis``, edges repeated: one cumsum."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (width // 2 + 1, width // 2)
    total = np.cumsum(np.pad(image, pad, mode="edge"), axis=axis)
    if axis == 0:
        return (total[width:] - total[:-width]) / width
    return (total[:, width:] - total[:, :-width]) / width


def _smooth(image: np.ndarray, passes: int) -> np.ndarray:
    """A blur as wide as ``passes`` of a 3-tap mean along each axis: those passes when few,
    else two box means of the same spread (as fast for any width)."""
    if passes <= 2:
        for _ in range(passes):
            image = _box(_box(image, 3, 0), 3, 1)
        return image
    width = int(np.sqrt(4 * passes + 1)) | 1
    for _ in range(2):
        image = _box(_box(image, width, 0), width, 1)
    return image


def trabeculae(shape: tuple[int, int], rng: np.random.Generator, grain: int) -> np.ndarray:
    """Cancellous bone's density, about 1: a network of thin struts (where smoothed noise
    crosses zero) over a coarser variation."""
    fine = _smooth(rng.normal(0, 1, shape), grain)
    struts = np.exp(-np.square(fine / (0.4 * fine.std())))
    coarse = _smooth(rng.normal(0, 1, shape), grain * 4)
    return 0.8 + 0.4 * struts + 0.12 * coarse / (coarse.std() or 1)


@dataclass(frozen=True)
class Film:
    """What a tooth is drawn on: the attenuation being summed, the bone's density (to
    displace), and the size of a pixel in mm."""

    attenuation: np.ndarray
    bone: np.ndarray
    mm_per_pixel: float


def _occlusal_outline(s: np.ndarray, half: float, position: int) -> np.ndarray:
    """How far into the tooth its occlusal surface lies at ``s``: a molar's two cusps and
    fossa, a premolar's or canine's point, an incisor's edge (mm)."""
    u = s / half
    if position >= 6:  # cusp tips half-way to the edges
        return 1.2 * (0.5 + 0.5 * np.cos(2 * np.pi * u))
    if position >= 4:
        return 1.8 * u**2
    if position == 3:
        return 2.6 * np.abs(u) ** 1.4
    return 0.4 * u**2


@dataclass(frozen=True)
class _Crown:
    inside: np.ndarray  # the pixels of the crown
    start: np.ndarray  # where its occlusal surface is, along the axis (mm)
    outer: np.ndarray  # the ray's length through the crown (mm)
    dentin: np.ndarray  # … through its dentin, under the enamel


def _crown(s: np.ndarray, v: np.ndarray, fdi: str, depth: float) -> _Crown:
    """Rounded at the occlusal corners, narrowing to the neck (the CEJ, at v = crown); the
    enamel thick over the cusps, thinning to nothing at the neck."""
    width, crown, _ = tooth_size(fdi)
    half = width / 2
    start = _occlusal_outline(s, half, int(fdi[1]))
    rounding = np.sqrt(np.clip(1 - np.square(1 - (v - start) / (0.35 * crown)), 0, 1))
    rounding = np.where(v - start > 0.35 * crown, 1.0, rounding)
    neck = 1 - 0.25 * np.clip((v - 0.35 * crown) / (0.65 * crown), 0, 1) ** 1.5
    inside = (v > start) & (v < crown)
    outer = np.where(inside, half * neck * rounding, 0.0)
    enamel = np.clip(1.3 * (1 - v / crown), 0, None)
    inner = np.where(v > start + 1.8, np.clip(outer - enamel, 0, None), 0.0)
    return _Crown(inside, start, _chord(outer, s, depth), _chord(inner, s, depth))


@dataclass(frozen=True)
class _Roots:
    dentin: np.ndarray  # the ray's length through the roots and trunk (mm)
    canals: np.ndarray  # … through the canals
    ligament: np.ndarray  # … through the ligament beside the roots
    lining: np.ndarray  # … through the lamina dura beside them


def _roots(s: np.ndarray, v: np.ndarray, fdi: str, depth: float) -> _Roots:
    """From the neck to the apices: one root, or a molar's two side by side (and an upper
    molar's palatal root behind them) under a trunk with an arched furcation."""
    width, crown, root = tooth_size(fdi)
    half = width / 2
    molar = int(fdi[1]) >= 6
    t = np.clip((v - crown) / root, 0, 1)
    inside = (v >= crown) & (v < crown + root)
    radii: list[tuple[float | np.ndarray, np.ndarray]] = []
    trunk = np.zeros_like(v)
    if molar:
        furcation = crown + 2.5 + 2.5 * np.square(s / (0.75 * half))
        trunk = np.where(inside & (v < furcation), half * 0.75, 0.0)
        for offset in (-1, 1):  # the roots' axes spreading apart towards the apices
            spread = offset * half * (0.35 + 0.3 * t)
            radii.append((spread, np.where(inside, 0.42 * half * _root_profile(t), 0.0)))
    else:
        radii.append((0.0, np.where(inside, half * 0.75 * _root_profile(t), 0.0)))
    dentin, canals = np.zeros_like(v), np.zeros_like(v)
    ligament, lining = np.zeros_like(v), np.zeros_like(v)
    in_a_root = np.zeros(v.shape, dtype=bool)
    below_crest = v > crown + 1.5
    for axis, radius in radii:
        across = s - axis
        dentin = np.maximum(dentin, _chord(radius, across, depth))  # side by side
        in_a_root |= np.abs(across) < radius
        canals += _chord(np.where(inside & (t < 0.97), np.maximum(0.25, radius * 0.16), 0), across)
        shell = np.where(below_crest & (radius > 0), radius, 0.0)
        ligament += _chord(shell + 0.25, across) - _chord(shell, across)
        lining += _chord(shell + 0.55, across) - _chord(shell + 0.25, across)
    if molar and fdi[0] in "12":
        dentin += _chord(np.where(inside, 0.38 * half * _root_profile(t), 0.0), s, depth)
    # A root's ligament and lamina dura show beside it, not through its neighbour.
    return _Roots(
        np.maximum(_chord(trunk, s, depth), dentin),
        canals,
        np.where(in_a_root, 0.0, ligament),
        np.where(in_a_root, 0.0, lining),
    )


def _pulp_chamber(s: np.ndarray, v: np.ndarray, fdi: str, depth: float) -> np.ndarray:
    """The ray's length through the pulp chamber: at the neck, wide and low, its horns
    rising under the cusps."""
    width, crown, _ = tooth_size(fdi)
    half = width / 2
    horns = 0.12 * crown * np.exp(-np.square((np.abs(s) - 0.5 * half) / (0.15 * half)))
    height = (v - 0.85 * crown + horns) / (0.17 * crown + horns)
    reach = 1 - np.square(s / (0.45 * half)) - np.square(height)
    return 0.6 * depth * half * np.sqrt(np.clip(reach, 0, 1))


def _restorations(s: np.ndarray, v: np.ndarray, fdi: str, crown: _Crown, mouth: Mouth, *,
                  depth: float, canals: np.ndarray, pulp: np.ndarray) -> np.ndarray:  # fmt: skip
    """The attenuation the tooth's restorations add."""
    width, height, _ = tooth_size(fdi)
    work = set(mouth.restorations.get(fdi, ()))
    added = np.zeros_like(v)
    if "root canal" in work:
        added += FILLINGS["root canal"] * (canals + pulp)
    if "crown" in work:
        added += FILLINGS["crown"] * np.where(v < height * 0.97, crown.outer, 0)
    for kind in ("amalgam", "composite"):
        if kind in work:
            # An occlusal filling: a rounded box from the fossa into the dentin.
            box = np.power(s / (0.19 * width), 4) + np.power(
                (v - 0.2 * height) / (0.24 * height), 4
            )
            cavity = np.where(crown.inside & (box < 1), 0.175 * width, 0.0)
            added += (FILLINGS[kind] - ENAMEL) * _chord(cavity, np.zeros_like(s), depth)
    return added


def paint_tooth(
    film: Film,
    fdi: str,
    *,
    x: float,
    y: float,
    direction: int,
    mouth: Mouth,
    tilt: float = 0.0,
    squeeze: float = 1.0,
) -> None:
    """Add tooth ``fdi`` to ``film``: its occlusal surface centred on pixel (x, y), its root
    going up (``direction`` -1: an upper tooth) or down (+1), its apex moved ``tilt`` radians
    towards +x; ``squeeze`` narrows it as seen obliquely (the arch turning away)."""
    width, crown_height, root_length = tooth_size(fdi)
    mm = film.mm_per_pixel
    rows, cols = film.attenuation.shape
    reach = (crown_height + root_length + 2) / mm
    side = (width * squeeze + 1) / mm + reach * abs(np.sin(tilt))
    top, bottom = (y - reach, y + 8) if direction < 0 else (y - 8, y + reach)
    x0, x1 = max(int(x - side), 0), min(int(x + side) + 1, cols)
    y0, y1 = max(int(top), 0), min(int(bottom) + 1, rows)
    if x0 >= x1 or y0 >= y1:
        return
    # The tooth's frame, in mm: s across it, v along its axis from the occlusal surface.
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = (xx - x) * mm, (yy - y) * mm * direction
    sin, cos = np.sin(tilt), np.cos(tilt)
    s = (dx * cos - dy * direction * sin) / squeeze
    v = dx * sin * direction + dy * cos
    # Back teeth are deeper (bucco-lingually) than wide; roots are ribbons, deeper still.
    depth, root_depth = (1.3, 1.6) if int(fdi[1]) >= 4 else (1.1, 1.5)
    crown = _crown(s, v, fdi, depth)
    roots = _roots(s, v, fdi, root_depth)
    pulp = _pulp_chamber(s, v, fdi, depth)
    dentin = np.where(crown.inside, crown.dentin, roots.dentin)
    enamel = np.where(v < crown_height * 0.95, crown.outer - crown.dentin, 0)
    solid = np.where(crown.inside, np.maximum(crown.outer, dentin), roots.dentin)
    # The tooth displaces the bone it stands in: its density times the ray's length.
    density = film.bone[y0:y1, x0:x1] / BONE
    added = DENTIN * (dentin - pulp - roots.canals) + ENAMEL * enamel
    added += density * (LAMINA_DURA * roots.lining - BONE * (roots.ligament + solid))
    added += _restorations(s, v, fdi, crown, mouth, depth=depth, canals=roots.canals, pulp=pulp)
    film.attenuation[y0:y1, x0:x1] += added


def expose(attenuation: np.ndarray, rng: np.random.Generator, *, noise: float) -> np.ndarray:
    """The detector's reading: ``1 - exp(-attenuation)``, a little blur and noise, 12 bits."""
    image = MAX_VALUE * (1 - np.exp(-np.clip(attenuation, 0, None)))
    image = _smooth(image, 1) + rng.normal(0, noise, image.shape)
    return np.clip(image, 0, MAX_VALUE).astype(np.uint16)


def _inside(distance: np.ndarray, softness: float) -> np.ndarray:
    """0 outside, 1 inside, across a soft edge: ``distance`` is positive inside (pixels)."""
    return 1 / (1 + np.exp(-np.clip(distance / softness, -30, 30)))


# Bitewings ---------------------------------------------------------------------------------

BITEWING_ROWS, BITEWING_COLUMNS = 300, 400
BITEWING_MM_PER_PIXEL = 0.1  # a size 2 sensor: 40 x 30 mm
# Each bitewing's teeth from the screen's left as the mount shows the patient's right side
# (the left side is drawn mirrored), and where the first tooth's distal edge is (mm).
_BITEWING_LAYOUTS = {
    "molar": (("18", "17", "16", "15", "14"), ("48", "47", "46", "45", "44"), 1.0, -1.5),
    "premolar": (
        ("17", "16", "15", "14", "13", "12"),
        ("47", "46", "45", "44", "43", "42"),
        -5.0,
        -3.0,
    ),
}
# The teeth a bitewing is about: the molars, or the premolars.
_BITEWING_TEETH = {"molar": slice(0, 3), "premolar": slice(2, 4)}


def _left_side(fdi: str) -> str:
    return {"1": "2", "4": "3"}[fdi[0]] + fdi[1]


def _bitewing_row(teeth: tuple[str, ...], start: float) -> list[tuple[str, float, float]]:
    """(tooth, centre in mm from the left edge, squeeze) of one jaw's teeth, touching."""
    row, edge = [], start
    for fdi in teeth:
        # The arch turns away from the sensor in front of the premolars: narrower there.
        squeeze = 0.7 if int(fdi[1]) <= 3 else 1.0
        width = tooth_size(fdi)[0] * squeeze
        row.append((fdi, edge + width / 2, squeeze))
        edge += width - 0.2  # neighbours touch, a little overlapped
    return row


def _crest(row: list[tuple[str, float, float]], x_mm: np.ndarray) -> np.ndarray:
    """How far from the occlusal plane one jaw's bone begins (mm): 1.5 mm past the necks,
    the septa rising between the teeth."""
    necks = [(centre, tooth_size(fdi)[1]) for fdi, centre, _ in row]
    centres = np.array([c for c, _ in necks])
    heights = np.array([h for _, h in necks])
    crest = np.interp(x_mm, centres, heights) + 1.6
    for left, right in zip(centres[:-1], centres[1:], strict=True):
        crest -= 1.1 * np.exp(-np.square((x_mm - (left + right) / 2) / 0.9))
    return crest


def bitewing(region: str, side: str, mouth: Mouth, *, seed: int) -> np.ndarray:
    """A horizontal bitewing of ``region`` ("molar" or "premolar") on ``side`` ("right" or
    "left"): upper and lower crowns meeting at the occlusal plane, the crestal bone above
    and below. 300 x 400 pixels, 0.1 mm each."""
    rng = np.random.default_rng(seed)
    rows, cols = BITEWING_ROWS, BITEWING_COLUMNS
    mm = BITEWING_MM_PER_PIXEL
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    occlusal = rows / 2 - 4 + 5 * np.sin(np.pi * xx / cols)  # the curve of Spee
    upper_teeth, lower_teeth, upper_start, lower_start = _BITEWING_LAYOUTS[region]
    jaws = [
        (_bitewing_row(upper_teeth, upper_start), -1),
        (_bitewing_row(lower_teeth, lower_start), 1),
    ]
    above = yy < occlusal
    gap = np.abs(yy - occlusal) * mm
    crest = np.where(above, _crest(jaws[0][0], xx * mm), _crest(jaws[1][0], xx * mm))
    density = trabeculae((rows, cols), rng, 3) * BONE
    bone = density * _inside((gap - crest) / mm, 3)
    cheeks = 0.14 + 0.1 * np.clip((gap - 0.5) / 4, 0, 1)
    # 9 mm of alveolar bone, its crest a thin cortex.
    cortex = 0.12 * _inside((0.3 - np.abs(gap - crest - 0.3)) / mm, 1.0)
    film = Film(cheeks + bone * 9.0 + cortex, bone, mm)
    for row, direction in jaws:
        for fdi, centre, squeeze in row:
            tooth = fdi if side == "right" else _left_side(fdi)
            if not mouth.has(tooth):
                continue
            x = centre / mm
            y = occlusal[0, int(np.clip(x, 0, cols - 1))] + 2 * direction
            paint_tooth(film, tooth, x=x, y=y, direction=direction, mouth=mouth, squeeze=squeeze)
    attenuation = film.attenuation if side == "right" else film.attenuation[:, ::-1]
    return expose(attenuation, rng, noise=30)


def bitewing_teeth(region: str, side: str, mouth: Mouth) -> list[str]:
    """The teeth a bitewing is about, present in the mouth, upper then lower (FDI)."""
    upper, lower, _, _ = _BITEWING_LAYOUTS[region]
    wanted = [*upper[_BITEWING_TEETH[region]], *lower[_BITEWING_TEETH[region]]]
    teeth = wanted if side == "right" else [_left_side(t) for t in wanted]
    return [t for t in teeth if mouth.has(t)]


# Panoramic ---------------------------------------------------------------------------------

PANORAMIC_ROWS, PANORAMIC_COLUMNS = 500, 1000
PANORAMIC_MM_PER_PIXEL = 0.2  # at the teeth: 0.25 mm at the detector, magnified 1.25 times
_SMILE = 0.00022  # the occlusal plane's curve, rows per column squared


def panoramic(mouth: Mouth, *, seed: int) -> np.ndarray:
    """A panoramic: both arches along a smiling occlusal plane, the mandible with its rami,
    condyles and canal, the maxilla with the sinuses, hard palate and nasal cavity.
    500 x 1000 pixels."""
    rng = np.random.default_rng(seed)
    rows, cols = PANORAMIC_ROWS, PANORAMIC_COLUMNS
    mm = PANORAMIC_MM_PER_PIXEL
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    dx = xx - cols / 2
    ax = np.abs(dx)
    occlusal = 255 - _SMILE * dx**2

    # Soft tissue of the face and neck, thicker in the middle.
    attenuation = 0.3 + 0.14 * np.exp(-np.square((yy - 250) / 230) - np.square(dx / 600))
    density = trabeculae((rows, cols), rng, 3)
    # The maxilla: the alveolar process, fading up into the sinuses, to the tuberosities.
    maxilla = _inside(occlusal - 40 - yy, 4) * _inside(yy - 125 - 0.0002 * dx**2, 14)
    maxilla *= _inside(345 - ax, 10)
    # The mandible: its body over a curved lower border, the angles, the rami (leaning
    # back as they rise) to the condyles, and the coronoid processes.
    lower_border = 462 - 0.00045 * dx**2
    body = _inside(yy - occlusal - 40, 4) * _inside(lower_border - yy, 3)
    posterior = 448 + 0.1 * (150 - yy)
    anterior = 360 + 0.12 * (150 - yy) + 0.0012 * np.square(yy - 300)
    ramus = _inside(posterior - ax, 3) * _inside(ax - anterior, 5) * _inside(yy - 180, 8)
    ramus *= _inside(lower_border + 25 - yy, 6) * _inside(ax - 300, 4)
    neck = _inside(13 - np.abs(ax - 442 + 0.1 * (yy - 110)), 3) * _inside(yy - 108, 3)
    condyle = _inside(1 - np.square((ax - 443) / 22) - np.square((yy - 110) / 17), 0.1)
    coronoid = _inside(13 - np.abs(ax - 352 - 0.25 * (yy - 150)), 3) * _inside(yy - 145, 4)
    mandible = np.maximum.reduce([body, ramus, neck * (yy < 200), condyle, coronoid * (yy < 230)])
    mandible *= _inside(470 - ax, 4)
    bone = density * BONE * (maxilla + mandible)
    attenuation += bone * (7.0 + 5.0 * _inside(350 - ax, 15))  # the body thicker than a ramus
    attenuation += 0.45 * _inside(7 - np.abs(yy - lower_border + 7), 1.5) * _inside(400 - ax, 8)
    attenuation += 0.12 * _inside(4 - np.abs(ax - posterior + 5), 2) * ramus

    # The mandibular canal under the molars, with its corticated walls.
    canal = 380 + 0.0004 * np.square(ax - 400) + 0.05 * (ax - 400)
    along = _inside(ax - 170, 10) * _inside(420 - ax, 10) * (yy > 300)
    attenuation += 0.1 * along * _inside(1.5 - np.abs(np.abs(yy - canal) - 6), 0.8)
    attenuation -= 0.1 * along * _inside(5 - np.abs(yy - canal), 1.5)

    # The sinuses, hard palate, nasal cavity and septum.
    sinus = 1 - np.square((ax - 215) / 115) - np.square((yy - 110 + 0.0001 * dx**2) / 48)
    attenuation -= 0.1 * _inside(sinus, 0.25)
    attenuation += 0.07 * _inside(0.05 - np.abs(sinus), 0.03)
    attenuation += 0.3 * _inside(4 - np.abs(yy - 150 - 0.0004 * dx**2), 1.5) * _inside(320 - ax, 8)
    nose = 1 - np.square(dx / 75) - np.square((yy - 85) / 62)
    attenuation -= 0.1 * _inside(nose, 0.25)
    attenuation += 0.12 * _inside(2.5 - ax, 1.5) * _inside(nose, 0.1)
    # The air between tongue and palate.
    attenuation -= 0.12 * _inside(9 - np.abs(yy - 172 - 0.0005 * dx**2), 3) * _inside(320 - ax, 10)

    film = Film(attenuation, bone, mm)
    for quadrant, sign in (("1", -1), ("2", 1), ("4", -1), ("3", 1)):
        direction = -1 if quadrant in "12" else 1
        edge = 0.3  # mm from the midline
        for position in range(1, 9):
            fdi = f"{quadrant}{position}"
            width = tooth_size(fdi)[0]
            centre = cols / 2 + sign * (edge + width / 2) / mm
            edge += width - 0.3
            if not mouth.has(fdi):
                continue
            slope = -2 * _SMILE * (centre - cols / 2)
            # Upright to the occlusal plane; the front teeth's roots leaning to the midline.
            tilt = -direction * np.arctan(slope) - sign * (0.06 if position <= 3 else 0.0)
            paint_tooth(
                film, fdi, x=centre, y=255 - _SMILE * (centre - cols / 2) ** 2 + 3 * direction,
                direction=direction, mouth=mouth, tilt=tilt,
            )  # fmt: skip

    # The spine's ghost over the front teeth, and the image's darker sides.
    attenuation = film.attenuation + 0.28 * np.exp(-np.square(dx / 55))
    attenuation -= 0.12 * np.clip((ax - 470) / 30, 0, 1)
    return expose(attenuation, rng, noise=35)
