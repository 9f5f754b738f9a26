"""Teeth and bone as an X-ray sees them: the drawing the demo's radiographs share.

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
ENAMEL_TOP = 3850  # just over the brightest enamel: restorations are brighter

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


def smooth(image: np.ndarray, passes: int) -> np.ndarray:
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
    fine = smooth(rng.normal(0, 1, shape), grain)
    struts = np.exp(-np.square(fine / (0.4 * fine.std())))
    coarse = smooth(rng.normal(0, 1, shape), grain * 4)
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
    image = smooth(image, 1) + rng.normal(0, noise, image.shape)
    return np.clip(image, 0, MAX_VALUE).astype(np.uint16)


def window(pixels: np.ndarray) -> tuple[int, int]:
    """(Window Center, Window Width) over what was exposed: from the darkest percent to the
    brightest tooth, metal above it shown white."""
    low, high = (float(v) for v in np.percentile(pixels, [1, 99.9]))
    high = min(high, ENAMEL_TOP)
    return round((low + high) / 2), round(high - low)


def inside(distance: np.ndarray, softness: float) -> np.ndarray:
    """0 outside, 1 inside, across a soft edge: ``distance`` is positive inside (pixels)."""
    return 1 / (1 + np.exp(-np.clip(distance / softness, -30, 30)))
