"""The panoramic: both arches along a smiling occlusal plane, with the jaws around them."""

from __future__ import annotations

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
    maxilla = inside(occlusal - 40 - yy, 4) * inside(yy - 125 - 0.0002 * dx**2, 14)
    maxilla *= inside(345 - ax, 10)
    # The mandible: its body over a curved lower border, the angles, the rami (leaning
    # back as they rise) to the condyles, and the coronoid processes.
    lower_border = 462 - 0.00045 * dx**2
    body = inside(yy - occlusal - 40, 4) * inside(lower_border - yy, 3)
    posterior = 448 + 0.1 * (150 - yy)
    anterior = 360 + 0.12 * (150 - yy) + 0.0012 * np.square(yy - 300)
    ramus = inside(posterior - ax, 3) * inside(ax - anterior, 5) * inside(yy - 180, 8)
    ramus *= inside(lower_border + 25 - yy, 6) * inside(ax - 300, 4)
    neck = inside(13 - np.abs(ax - 442 + 0.1 * (yy - 110)), 3) * inside(yy - 108, 3)
    condyle = inside(1 - np.square((ax - 443) / 22) - np.square((yy - 110) / 17), 0.1)
    coronoid = inside(13 - np.abs(ax - 352 - 0.25 * (yy - 150)), 3) * inside(yy - 145, 4)
    mandible = np.maximum.reduce([body, ramus, neck * (yy < 200), condyle, coronoid * (yy < 230)])
    mandible *= inside(470 - ax, 4)
    bone = density * BONE * (maxilla + mandible)
    attenuation += bone * (7.0 + 5.0 * inside(350 - ax, 15))  # the body thicker than a ramus
    attenuation += 0.45 * inside(7 - np.abs(yy - lower_border + 7), 1.5) * inside(400 - ax, 8)
    attenuation += 0.12 * inside(4 - np.abs(ax - posterior + 5), 2) * ramus

    # The mandibular canal under the molars, with its corticated walls.
    canal = 380 + 0.0004 * np.square(ax - 400) + 0.05 * (ax - 400)
    along = inside(ax - 170, 10) * inside(420 - ax, 10) * (yy > 300)
    attenuation += 0.1 * along * inside(1.5 - np.abs(np.abs(yy - canal) - 6), 0.8)
    attenuation -= 0.1 * along * inside(5 - np.abs(yy - canal), 1.5)

    # The sinuses, hard palate, nasal cavity and septum.
    sinus = 1 - np.square((ax - 215) / 115) - np.square((yy - 110 + 0.0001 * dx**2) / 48)
    attenuation -= 0.1 * inside(sinus, 0.25)
    attenuation += 0.07 * inside(0.05 - np.abs(sinus), 0.03)
    attenuation += 0.3 * inside(4 - np.abs(yy - 150 - 0.0004 * dx**2), 1.5) * inside(320 - ax, 8)
    nose = 1 - np.square(dx / 75) - np.square((yy - 85) / 62)
    attenuation -= 0.1 * inside(nose, 0.25)
    attenuation += 0.12 * inside(2.5 - ax, 1.5) * inside(nose, 0.1)
    # The air between tongue and palate.
    attenuation -= 0.12 * inside(9 - np.abs(yy - 172 - 0.0005 * dx**2), 3) * inside(320 - ax, 10)

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
